// Types of the bundle scripts/build-gradients.js writes at install time (it only registers gradients
// and chained ops into tfjs-core's global registries; it exports nothing).
export {};
