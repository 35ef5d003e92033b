// Shared UI state (not from the server).
class Ui {
  chartSymbol = $state(null);
  drawerAgentId = $state(null);
  showAddAgent = $state(false);
  showLlm = $state(false); // the LLM setup panel
  now = $state(Date.now()); // wall clock for countdowns, ticks once a second

  constructor() {
    if (typeof window !== 'undefined') {
      setInterval(() => {
        this.now = Date.now();
      }, 1000);
    }
  }
}

export const ui = new Ui();
