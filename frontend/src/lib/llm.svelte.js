// LLM endpoints (REST only: they are not in the WebSocket stream). Shared by the LLM setup panel
// and the add-agent form (its "llm" brain picks an endpoint and one of its models).
import { get } from './api.js';

class Llm {
  endpoints = $state([]);
  loaded = $state(false); // the list has been fetched once
  error = $state('');
  models = $state({}); // endpoint name -> [{name, size_bytes, details}]
  modelErrors = $state({}); // endpoint name -> message

  async load() {
    try {
      this.endpoints = await get('/api/llm/endpoints');
      this.error = '';
    } catch (err) {
      this.error = err.message;
    } finally {
      this.loaded = true;
    }
    return this.endpoints;
  }

  async loadModels(name) {
    try {
      const res = await get(`/api/llm/endpoints/${encodeURIComponent(name)}/models`);
      this.models = { ...this.models, [name]: res.models || [] };
      this.modelErrors = { ...this.modelErrors, [name]: '' };
    } catch (err) {
      this.modelErrors = { ...this.modelErrors, [name]: err.message };
    }
    return this.models[name] || [];
  }

  added(view) {
    this.endpoints = [...this.endpoints.filter((e) => e.name !== view.name), view];
  }

  removed(name) {
    this.endpoints = this.endpoints.filter((e) => e.name !== name);
    const { [name]: _m, ...models } = this.models;
    this.models = models;
  }
}

export const llm = new Llm();
