// CSV from MySQL text-protocol row packets, compiled to WebAssembly (scripts/build-wasm.sh).
// The same bytes as RawRowEncoder.row() in ../raw-csv.ts, which stays the reference: a row with
// a cell this code does not encode (a DOUBLE whose text is not already Python's repr, a BIT or
// pseudonymized column) is handed back to it. Byte loops here run at native speed; in the JIT
// they were most of an extraction's time.
//
// No libc: the module imports nothing and keeps its state in linear memory, which the caller
// lays out (codes, input packets, output) and reads back through the exported `result`.

#include <wasm_simd128.h>

typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long long u64;

// The codes of raw-csv.ts.
enum { COPY = 0, TEXT = 1, DATETIME = 2, DOUBLE = 3, HEX = 4, UNPADDED = 5 };

// Why encode() stopped.
enum {
  /** every packet of the input was encoded */
  DONE = 0,
  /** the output has no room for the next row */
  OUTPUT_FULL = 1,
  /** the next packet is a row for the reference encoder */
  REFERENCE_ROW = 2,
  /**
   * the next packet ends the rows (EOF, OK or error: 0xFE or 0xFF first) or is split in several
   * (a cell of 16 MiB or more): mysql2's parser takes over from there
   */
  NOT_A_ROW = 3,
};

/** consumed input bytes, written output bytes, rows encoded, why it stopped, the part (routed) */
u32 result[5];

/** the bytes escaped inside quotes (escaped() for sixteen at a time) */
static u8 escapes[256];
#define SPLAT(c) wasm_i8x16_const(c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c)
#define comma SPLAT(',')
#define quote SPLAT('"')
#define backslash SPLAT('\\')
#define cr SPLAT('\r')
#define lf SPLAT('\n')
static const u8 hex_digits[16] = "0123456789abcdef";

__attribute__((export_name("init"))) void init(void) {
  escapes['"'] = 1;
  escapes['\\'] = 1;
  escapes['\r'] = 1;
  escapes['\n'] = 1;
}

/**
 * 1: an integer's text (at most 15 digits), written with ".0"; 2: a decimal of at most 15
 * significant digits, at least 1e-4, without a trailing zero, written as it is; 0: neither.
 * Such text is already Python's repr: two decimals of at most 15 significant digits never read
 * as the same double, so no shorter text reads back to it.
 */
static int plain_double(const u8 *s, const u8 *e) {
  const u8 *k = s;
  if (k < e && *k == '-') k++;
  const u8 *int_start = k;
  while (k < e && *k >= '0' && *k <= '9') k++;
  long int_digits = k - int_start;
  if (int_digits == 0 || int_digits > 15) return 0;
  if (int_digits > 1 && *int_start == '0') return 0;
  if (k == e) return 1;
  if (*k != '.') return 0;
  k++;
  const u8 *frac_start = k;
  while (k < e && *k >= '0' && *k <= '9') k++;
  if (k != e || k == frac_start || e[-1] == '0') return 0;
  long significant = int_digits + (e - frac_start);
  if (int_digits == 1 && *int_start == '0') {
    const u8 *z = frac_start;
    while (*z == '0') z++;
    if (z - frac_start > 3) return 0;
    significant = e - z;
  }
  return significant <= 15 ? 2 : 0;
}

/** The bytes of a vector that are escaped inside quotes: `"` `\\` CR LF. */
static inline v128_t escaped(v128_t v) {
  return wasm_v128_or(wasm_v128_or(wasm_i8x16_eq(v, quote), wasm_i8x16_eq(v, backslash)),
                      wasm_v128_or(wasm_i8x16_eq(v, cr), wasm_i8x16_eq(v, lf)));
}

/** The bytes of a vector that need care in a CSV cell (the cell is then quoted): those and `,`. */
static inline u32 specials(v128_t v) {
  return wasm_i8x16_bitmask(wasm_v128_or(escaped(v), wasm_i8x16_eq(v, comma)));
}

/**
 * `len` bytes from s to o, sixteen at a time, instead of a memory.copy per cell: reads up to 15
 * bytes past s + len (the caller leaves that much memory after its input) and writes up to 15
 * past o + len (the output bound counts 16 bytes for it), which the rest of the row writes over.
 */
static inline void copy16(u8 *o, const u8 *s, u64 len) {
  for (u64 k = 0; k < len; k += 16) wasm_v128_store(o + k, wasm_v128_load(s + k));
}

/** One row's payload [p, end) into o; returns the end of the output, or 0 for the reference. */
static u8 *row(const u8 *p, const u8 *end, u8 *o, const u8 *codes, u32 width) {
  for (u32 i = 0; i < width; i++) {
    if (i > 0) *o++ = ',';
    if (p >= end) return 0;
    u64 len = *p++;
    if (len == 0xfb) continue;
    if (len > 0xfb) {
      if (len == 0xfc) {
        len = p[0] | (p[1] << 8);
        p += 2;
      } else if (len == 0xfd) {
        len = p[0] | (p[1] << 8) | ((u32)p[2] << 16);
        p += 3;
      } else {
        // An 8-byte length: a cell of 16 MiB or more comes in several packets, never here.
        return 0;
      }
    }
    if (len > (u64)(end - p)) return 0;
    const u8 *s = p;
    const u8 *e = p + len;
    p = e;
    if (len == 0) continue;
    switch (codes[i]) {
      case TEXT: {
        // Sixteen bytes at a time, the last ones masked to the cell (read past it, as copy16
        // does): the first byte that needs care, or none, and the cell is copied as it is.
        const u8 *q = s;
        for (;;) {
          u64 left = (u64)(e - q);
          u32 bits = specials(wasm_v128_load(q));
          if (left < 16) bits &= (1u << left) - 1;
          if (bits) {
            q += __builtin_ctz(bits);
            goto quoted;
          }
          if (left <= 16) break;
          q += 16;
        }
        copy16(o, s, len);
        o += len;
        break;
      quoted:
        *o++ = '"';
        copy16(o, s, (u64)(q - s));
        o += q - s;
        while (q < e) {
          if (e - q >= 16) {
            v128_t v = wasm_v128_load(q);
            v128_t m = escaped(v);
            wasm_v128_store(o, v);
            if (!wasm_v128_any_true(m)) {
              o += 16;
              q += 16;
              continue;
            }
            int k = __builtin_ctz(wasm_i8x16_bitmask(m));
            o += k;
            q += k;
          }
          u8 c = *q++;
          if (!escapes[c]) {
            *o++ = c;
          } else if (c == '"') {
            *o++ = '\\';
            *o++ = '"';
          } else if (c == '\\') {
            // canonical `\\`, each escaped inside quotes
            *o++ = '\\';
            *o++ = '\\';
            *o++ = '\\';
            *o++ = '\\';
          } else {
            // canonical `\r` / `\n`, its backslash escaped inside quotes
            *o++ = '\\';
            *o++ = '\\';
            *o++ = c == '\r' ? 'r' : 'n';
          }
        }
        *o++ = '"';
        break;
      }
      case COPY:
        copy16(o, s, len);
        o += len;
        break;
      case DATETIME: {
        copy16(o, s, len);
        o += len;
        // "YYYY-MM-DD HH:MM:SS", then its fractional digits padded to six
        if (len == 19) *o++ = '.';
        u64 digits = len == 19 ? 0 : (len > 20 && len < 26 && s[19] == '.') ? len - 20 : 6;
        for (u64 k = digits; k < 6; k++) *o++ = '0';
        break;
      }
      case DOUBLE: {
        int plain = plain_double(s, e);
        if (plain == 0) return 0;
        __builtin_memcpy(o, s, len);
        o += len;
        if (plain == 1) {
          *o++ = '.';
          *o++ = '0';
        }
        break;
      }
      case UNPADDED: {
        const u8 *k = s;
        while (k < e - 1 && *k == '0') k++;
        __builtin_memcpy(o, k, e - k);
        o += e - k;
        break;
      }
      case HEX:
        for (const u8 *k = s; k < e; k++) {
          *o++ = hex_digits[*k >> 4];
          *o++ = hex_digits[*k & 15];
        }
        break;
      default:
        return 0;
    }
  }
  if (p != end) return 0;
  *o++ = '\r';
  *o++ = '\n';
  return o;
}

/**
 * Encode the complete row packets (4-byte headers included) in [in, in + length) into
 * [out, out + capacity). Stops at the end of the input, when the next row might not fit, or at a
 * row for the reference encoder; result[] says where and why.
 */
__attribute__((export_name("encode"))) u32 encode(const u8 *in, u32 length, u8 *out, u32 capacity,
                                                  const u8 *codes, u32 width) {
  const u8 *p = in;
  const u8 *in_end = in + length;
  u8 *o = out;
  u32 rows = 0;
  u32 why = DONE;
  while (in_end - p >= 4) {
    u32 payload = p[0] | (p[1] << 8) | ((u32)p[2] << 16);
    const u8 *start = p + 4;
    const u8 *end = start + payload;
    if (end > in_end) break;
    if (payload == 0 || payload == 0xffffff || start[0] >= 0xfe) {
      why = NOT_A_ROW;
      break;
    }
    // Worst case: every byte escaped to 4, quotes, separators, DATETIME padding, CRLF, and the
    // 16 bytes a vector store may write past the end.
    u64 bound = 4ull * payload + 9ull * width + 2 + 16;
    if (bound > (u64)(out + capacity - o)) {
      why = OUTPUT_FULL;
      break;
    }
    u8 *next = row(start, end, o, codes, width);
    if (next == 0) {
      why = REFERENCE_ROW;
      break;
    }
    o = next;
    p = end;
    rows++;
  }
  result[0] = (u32)(p - in);
  result[1] = (u32)(o - out);
  result[2] = rows;
  result[3] = why;
  return why;
}

// Routing (partition-scan.ts): each row's first cell names its partition, whose CSV goes to a
// buffer of its own; the caller writes a buffer out when it is full, and all of them at the end.

/** One partition: its value's bytes, and its buffer (addresses in this memory). */
typedef struct {
  u32 key_at, key_length;
  u32 buffer_at, capacity, used, rows;
} Part;

enum {
  /** the next row's partition buffer has no room for it: result[4] says which */
  PART_FULL = 4,
  /** the next row's partition was not listed */
  NOT_LISTED = 5,
};

#define NO_PART 0xffffffffu

static u32 fnv(const u8 *p, u32 n) {
  u32 h = 2166136261u;
  for (u32 i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

/** Fill `table` (size a power of two, zeroed, at least twice n) with part index + 1 by value. */
__attribute__((export_name("index_parts"))) void index_parts(const Part *parts, u32 n, u32 *table,
                                                            u32 size) {
  for (u32 i = 0; i < n; i++) {
    if (parts[i].key_length == NO_PART) continue;
    u32 slot = fnv((const u8 *)parts[i].key_at, parts[i].key_length) & (size - 1);
    while (table[slot]) slot = (slot + 1) & (size - 1);
    table[slot] = i + 1;
  }
}

static int find_part(const Part *parts, const u32 *table, u32 size, const u8 *key, u32 length) {
  u32 slot = fnv(key, length) & (size - 1);
  while (table[slot]) {
    const Part *part = &parts[table[slot] - 1];
    if (part->key_length == length) {
      const u8 *k = (const u8 *)part->key_at;
      u32 i = 0;
      while (i < length && k[i] == key[i]) i++;
      if (i == length) return (int)table[slot] - 1;
    }
    slot = (slot + 1) & (size - 1);
  }
  return -1;
}

/**
 * encode() for routed rows: the first cell picks the part (`null_part` for NULL, -1: none), the
 * other cells are encoded into its buffer. result[4]: the part of a PART_FULL or REFERENCE_ROW.
 */
__attribute__((export_name("encode_routed"))) u32 encode_routed(const u8 *in, u32 length, const u8 *codes,
                                                                u32 width, Part *parts, const u32 *table,
                                                                u32 size, int null_part) {
  const u8 *p = in;
  const u8 *in_end = in + length;
  u32 rows = 0;
  u32 why = DONE;
  int part_index = -1;
  while (in_end - p >= 4) {
    u32 payload = p[0] | (p[1] << 8) | ((u32)p[2] << 16);
    const u8 *start = p + 4;
    const u8 *end = start + payload;
    if (end > in_end) break;
    if (payload == 0 || payload == 0xffffff || start[0] >= 0xfe) {
      why = NOT_A_ROW;
      break;
    }
    const u8 *cells = start;
    u32 cell = *cells++;
    if (cell == 0xfb) {
      part_index = null_part;
    } else {
      if (cell == 0xfc) {
        cell = cells[0] | (cells[1] << 8);
        cells += 2;
      } else if (cell > 0xfb) {
        // A partition value of 64 KiB or more: never a listed one.
        cell = NO_PART;
      }
      part_index = cell == NO_PART || cell > (u32)(end - cells) ? -1 : find_part(parts, table, size, cells, cell);
      if (part_index >= 0) cells += cell;
    }
    if (part_index < 0) {
      why = NOT_LISTED;
      break;
    }
    Part *part = &parts[part_index];
    u64 bound = 4ull * payload + 9ull * width + 2 + 16;
    if (bound > (u64)(part->capacity - part->used)) {
      why = PART_FULL;
      break;
    }
    u8 *o = (u8 *)part->buffer_at + part->used;
    u8 *next = row(cells, end, o, codes, width);
    if (next == 0) {
      why = REFERENCE_ROW;
      break;
    }
    part->used = (u32)(next - (u8 *)part->buffer_at);
    part->rows++;
    p = end;
    rows++;
  }
  result[0] = (u32)(p - in);
  result[1] = 0;
  result[2] = rows;
  result[3] = why;
  result[4] = (u32)part_index;
  return why;
}
