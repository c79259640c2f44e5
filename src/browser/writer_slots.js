// The JS half of src/browser/writer_slots.rs.

// Resolves with the function that releases the lock `name` if it was free, else with null.
export function tryLock(locks, name) {
  return new Promise((resolve, reject) => {
    locks.request(name, { ifAvailable: true }, (lock) => {
      if (!lock) {
        resolve(null);
        return undefined;
      }
      return new Promise((release) => resolve(release));
    }).catch(reject);
  });
}

// The names of every lock held in this origin.
export function heldLockNames(locks) {
  return locks.query().then((s) => (s.held || []).map((l) => l.name));
}
