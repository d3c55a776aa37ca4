// The only third-party code the portal serves: well-kept, audited noble
// libraries, bundled into ../assets/noble.mjs by scripts/refresh-portal-assets.
export { blake3 } from '@noble/hashes/blake3.js';
export { sha256 } from '@noble/hashes/sha2.js';
export { ed25519 } from '@noble/curves/ed25519.js';
