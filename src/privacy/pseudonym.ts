// Keyed pseudonyms (DESIGN §11): `pz_` + the first 26 characters of the lowercase base32 of
// HMAC-SHA256(key, value). The same value gives the same pseudonym in every table, run and log
// event, so joins keep working; nobody without the key can reverse one. The key file is read
// here, checked as strictly as the config file that names it.
import { readFileSync, statSync } from "node:fs";
import { exposedFileWarning } from "../config/secrets.ts";

/** Bytes a key file must hold at least (the HMAC-SHA256 block is 64; 32 is the hash size). */
export const KEY_BYTES = 32;
const PREFIX = "pz_";
/** 26 base32 characters: 130 bits of the digest. */
const CHARACTERS = 26;
export const PSEUDONYM_LENGTH = PREFIX.length + CHARACTERS;

const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";
const encoder = new TextEncoder();

/** Lowercase RFC 4648 base32 of the first bytes of `digest`, cut to 26 characters. */
function base32(digest: Uint8Array): string {
  let out = PREFIX;
  let bits = 0;
  let value = 0;
  for (let i = 0; out.length < PSEUDONYM_LENGTH; i++) {
    value = ((value << 8) | digest[i]!) & 0xffff;
    bits += 8;
    while (bits >= 5 && out.length < PSEUDONYM_LENGTH) {
      bits -= 5;
      out += ALPHABET[(value >> bits) & 31];
    }
  }
  return out;
}

export class Pseudonymizer {
  constructor(private readonly key: Uint8Array) {}

  /**
   * The pseudonym of a value: text is taken as its UTF-8 bytes, so a username read from MySQL
   * and the same username read from a JSON event give the same pseudonym. NULL and "" are not
   * personal values: callers keep them as they are.
   */
  of(value: string | Uint8Array): string {
    const hmac = new Bun.CryptoHasher("sha256", this.key);
    hmac.update(typeof value === "string" ? encoder.encode(value) : value);
    return base32(hmac.digest());
  }
}

const MAKE_ONE =
  "`panorama init` writes one (0600), or: head -c 32 /dev/urandom > <file> && chmod 600 <file>";

/**
 * A key file read: its key, or what is wrong with it and the fix. `existing`: a key is there that
 * this user may not read, which must be kept (a new one would change every pseudonym).
 */
export type KeyFile = { key: Uint8Array } | { problem: string; hint: string; existing?: true };

export function readKeyFile(file: string): KeyFile {
  const hint = MAKE_ONE.replaceAll("<file>", file);
  let key: Buffer;
  try {
    key = readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    if (code === "EACCES" || code === "EPERM") {
      const uid = process.getuid?.();
      let owner = "";
      try {
        owner = ` (uid ${statSync(file).uid})`;
      } catch {}
      return {
        problem: `cannot read the key file (${code}): ${file}`,
        hint: `the key is there, but this user${uid === undefined ? "" : ` (uid ${uid})`} may not read it: run panorama as its owner${owner}, or give the file to this user with chown (mode 0600 kept); do not make a new key: that would change every pseudonym`,
        existing: true,
      };
    }
    const problem = code === "ENOENT" ? "no such key file" : `cannot read the key file (${code})`;
    return { problem: `${problem}: ${file}`, hint };
  }
  if (key.length < KEY_BYTES) {
    const bytes = `${key.length} byte${key.length === 1 ? "" : "s"}`;
    return {
      problem: `the key file ${file} holds ${bytes}, expected at least ${KEY_BYTES} random bytes`,
      hint,
    };
  }
  return { key: new Uint8Array(key) };
}

/** A warning when the key file can be read by group or others (as for a config file with a secret). */
export function keyFileWarning(file: string): string | null {
  return exposedFileWarning(file, "the pseudonym key");
}

/** What to tell an operator wherever the key is made or shown. */
export const KEY_WARNING =
  "keep this key: losing or changing it changes every pseudonym, and new data no longer joins the old";
