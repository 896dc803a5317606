// What Athena's OpenCSVSerde reads from a CSV file: a line-by-line port of opencsv 2.3's
// CSVParser (the version Hive bundles) and of the part of CSVReader.readNext() that the SerDe
// exercises. The SerDe is configured with separator `,`, quote `"`, escape `\` and calls
// `new CSVReader(reader, separator, quote, escape)`, which leaves strictQuotes = false and
// ignoreLeadingWhiteSpace = true. Hadoop's TextInputFormat splits the file into lines first
// (on LF, CR or CRLF), and the SerDe builds a fresh CSVReader, so a fresh parser, for each line.

const SEPARATOR = ",";
const QUOTECHAR = '"';
const ESCAPE = "\\";
const STRICT_QUOTES = false;
const IGNORE_LEADING_WHITE_SPACE = true;

// Java's Character.isWhitespace for a UTF-16 unit: space, line and paragraph separators except
// the non-breaking ones, plus the ASCII controls U+0009-U+000D and U+001C-U+001F.
function isJavaWhitespace(c: number): boolean {
  if ((c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20)) return true;
  if (c < 0x1680) return false;
  return (
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x2006) ||
    (c >= 0x2008 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x205f ||
    c === 0x3000
  );
}

class CSVParser {
  private pending: string | null = null;
  private inField = false;

  isPending(): boolean {
    return this.pending !== null;
  }

  /** CSVParser.parseLine(nextLine, multi = true), as CSVReader calls it. */
  parseLineMulti(nextLine: string | null): string[] | null {
    if (nextLine === null) {
      if (this.pending !== null) {
        const s = this.pending;
        this.pending = null;
        return [s];
      }
      return null;
    }
    const tokensOnThisLine: string[] = [];
    let sb: string | null = "";
    let inQuotes = false;
    if (this.pending !== null) {
      sb = this.pending;
      this.pending = null;
      inQuotes = true;
    }
    for (let i = 0; i < nextLine.length; i++) {
      const c = nextLine.charAt(i);
      if (c === ESCAPE) {
        // A lone escape char (not escaping a quote or an escape char, or outside a quoted
        // field at the field's start) is dropped.
        if (this.isNextCharacterEscapable(nextLine, inQuotes || this.inField, i)) {
          sb += nextLine.charAt(i + 1);
          i++;
        }
      } else if (c === QUOTECHAR) {
        if (this.isNextCharacterEscapedQuote(nextLine, inQuotes || this.inField, i)) {
          sb += nextLine.charAt(i + 1);
          i++;
        } else {
          inQuotes = !inQuotes;
          // the tricky case of an embedded quote in the middle: a,bc"d"ef,g
          if (!STRICT_QUOTES) {
            if (
              i > 2 &&
              nextLine.charAt(i - 1) !== SEPARATOR &&
              nextLine.length > i + 1 &&
              nextLine.charAt(i + 1) !== SEPARATOR
            ) {
              if (IGNORE_LEADING_WHITE_SPACE && sb.length > 0 && isAllWhiteSpace(sb)) {
                sb = "";
              } else {
                sb += c;
              }
            }
          }
        }
        this.inField = !this.inField;
      } else if (c === SEPARATOR && !inQuotes) {
        tokensOnThisLine.push(sb);
        sb = "";
        this.inField = false;
      } else if (!STRICT_QUOTES || inQuotes) {
        sb += c;
        this.inField = true;
      }
    }
    if (inQuotes) {
      // multi-line mode: continue the quoted field on the next line
      sb += "\n";
      this.pending = sb;
      sb = null;
    }
    if (sb !== null) tokensOnThisLine.push(sb);
    return tokensOnThisLine;
  }

  private isNextCharacterEscapedQuote(nextLine: string, inQuotes: boolean, i: number): boolean {
    return inQuotes && nextLine.length > i + 1 && nextLine.charAt(i + 1) === QUOTECHAR;
  }

  private isNextCharacterEscapable(nextLine: string, inQuotes: boolean, i: number): boolean {
    return (
      inQuotes &&
      nextLine.length > i + 1 &&
      (nextLine.charAt(i + 1) === QUOTECHAR || nextLine.charAt(i + 1) === ESCAPE)
    );
  }
}

function isAllWhiteSpace(sb: string): boolean {
  for (let i = 0; i < sb.length; i++) {
    if (!isJavaWhitespace(sb.charCodeAt(i))) return false;
  }
  return true;
}

/**
 * CSVReader.readNext() over a reader holding one line without its terminator, as OpenCSVSerde
 * builds it. null (the SerDe then reads every column as NULL) for an empty line, and for a line
 * whose first field opens a quote that never closes; when a later field does that, the fields
 * before it are returned and the rest of the row is NULL.
 */
export function readRecord(line: string): string[] | null {
  const parser = new CSVParser();
  // BufferedReader.readLine() returns the line once, then null; on an empty reader, null at once.
  const lines: (string | null)[] = line.length > 0 ? [line, null] : [null];
  let next = 0;
  let result: string[] | null = null;
  do {
    const nextLine = lines[next++] ?? null;
    if (nextLine === null) return result;
    const r = parser.parseLineMulti(nextLine);
    if (r !== null && r.length > 0) result = result === null ? r : [...result, ...r];
  } while (parser.isPending());
  return result;
}

/** Hadoop's TextInputFormat lines: split on LF, CR or CRLF; a final terminator ends the last line. */
export function splitLines(text: string): string[] {
  const lines = text.split(/\r\n|\r|\n/);
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/**
 * Every record of a CSV file as OpenCSVSerde reads it, header included (the table skips it with
 * skip.header.line.count). A line that reads as null gives an empty array.
 */
export function decodeFile(text: string): string[][] {
  return splitLines(text).map((line) => readRecord(line) ?? []);
}
