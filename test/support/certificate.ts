// A self-signed certificate for 127.0.0.1, made with openssl for one test or benchmark run: the
// MySQL 8 stand-in's TLS, an HTTPS stand-in for S3, s3rver over HTTPS. A client trusts it through
// NODE_EXTRA_CA_CERTS (the executable), fetch's `tls.ca` (in process) or AWS_CA_BUNDLE (aws).
import { join } from "node:path";

export interface Certificate {
  keyFile: string;
  certFile: string;
}

/** Writes key.pem and cert.pem (valid a day, for `name` and IP 127.0.0.1) into `dir`. */
export function makeCertificate(dir: string, name: string): Certificate {
  const keyFile = join(dir, "key.pem");
  const certFile = join(dir, "cert.pem");
  const openssl = Bun.spawnSync(
    ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyFile, "-out", certFile].concat(
      ["-days", "1", "-subj", `/CN=${name}`, "-addext", "subjectAltName=IP:127.0.0.1"],
    ),
    { stdout: "pipe", stderr: "pipe" },
  );
  if (openssl.exitCode !== 0) throw new Error(`openssl failed: ${openssl.stderr.toString()}`);
  return { keyFile, certFile };
}
