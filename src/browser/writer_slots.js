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

export function heldLockNames(locks) {
  return locks.query().then((s) => (s.held || []).map((l) => l.name));
}
