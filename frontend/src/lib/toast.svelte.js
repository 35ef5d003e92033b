// Small notifications for command results and errors.
let nextId = 1;

class Toasts {
  items = $state([]);

  show(message, kind = 'info', ms = 5000) {
    const id = nextId++;
    this.items = [...this.items, { id, message, kind }];
    if (ms > 0) setTimeout(() => this.dismiss(id), ms);
    return id;
  }

  error(message) {
    return this.show(message, 'error', 8000);
  }

  dismiss(id) {
    this.items = this.items.filter((t) => t.id !== id);
  }
}

export const toasts = new Toasts();

// A confirmation dialog (rendered by ConfirmDialog.svelte): resolves to null when cancelled,
// else to {option} (the state of the optional checkbox).
class Confirmer {
  request = $state(null);

  ask({ title, message = '', confirmLabel = 'Confirm', danger = false, option = null }) {
    this.request?.resolve(null);
    return new Promise((resolve) => {
      this.request = { title, message, confirmLabel, danger, option, resolve };
    });
  }

  answer(ok, option = false) {
    const req = this.request;
    this.request = null;
    req?.resolve(ok ? { option } : null);
  }
}

export const confirmer = new Confirmer();
