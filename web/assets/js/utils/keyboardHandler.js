// keyboardHandler.js: view shortcuts that never override the browser's own (D-27): plain 1/2/3
// when focus is not in a text field, or Alt+1/2/3 anywhere. Ctrl/Meta combinations are left alone.

function inTextField(target) {
  if (!target || !target.tagName) return false;
  const tag = target.tagName.toLowerCase();
  return tag === 'input' || tag === 'textarea' || tag === 'select' || target.isContentEditable;
}

/**
 * Installs the handler. `bindings` maps a key ("1") to a callback. Returns an uninstall function.
 */
export function installShortcuts(bindings, root = document) {
  const onKey = (e) => {
    if (e.ctrlKey || e.metaKey || e.defaultPrevented || e.repeat) return;
    const key = e.code && e.code.startsWith('Digit') ? e.code.slice(5) : e.key;
    const action = bindings[key];
    if (!action) return;
    if (e.altKey || (!e.shiftKey && !inTextField(e.target))) {
      e.preventDefault();
      action();
    }
  };
  root.addEventListener('keydown', onKey);
  return () => root.removeEventListener('keydown', onKey);
}
