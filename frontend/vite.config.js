import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { fileURLToPath } from 'node:url';

// The build lands inside the Python package so the API serves it at "/" (see
// src/phantomex/api/dashboard.py). `npm run dev` proxies the API to a server on :8000.
const outDir = fileURLToPath(new URL('../src/phantomex/api/static', import.meta.url));
const api = process.env.PHANTOMEX_URL || 'http://127.0.0.1:8000';

export default defineConfig({
  plugins: [svelte()],
  base: '/',
  build: {
    outDir,
    emptyOutDir: true,
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: {
      '/api': api,
      '/health': api,
      '/ws': { target: api.replace(/^http/, 'ws'), ws: true },
    },
  },
  test: {
    include: ['tests/**/*.test.js'],
    environment: 'node',
  },
});
