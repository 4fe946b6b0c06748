// The scenario scripts' shared helpers (ts_chat.mjs, ts_arena.mjs): a promise with a deadline, and named
// steps whose durations and first failure go into the JSON report the Python test reads.

/** `promise`, or a rejection naming `what` after `ms` milliseconds. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A `step(name, fn)` that runs `fn`, appends `{step, ms}` to `out.steps`, and on a failure records
 * `{step, error, at_ms}` (at `elapsed()` ms into the run) in `out.failed` before rethrowing.
 */
export function stepper(out, elapsed) {
  return async function step(name, fn) {
    const t = Date.now();
    try {
      const value = await fn();
      out.steps.push({ step: name, ms: Date.now() - t });
      return value;
    } catch (e) {
      out.failed = { step: name, error: e.message, at_ms: elapsed() };
      throw e;
    }
  };
}
