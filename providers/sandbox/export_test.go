package sandbox

// MidasSig exposes the sandbox's own signer to the external test package,
// for the public test vector.
var MidasSig = midasSig
