import type postgres from "postgres";

/*
 * Array types for the postgres.js clients `createDb` makes with `fetch_types: false` (db.ts says
 * why). postgres.js would otherwise learn them with a catalog query on every new connection; here
 * the built-in ones are registered once, when the client is made, exactly as postgres.js 3.4.9
 * registers what that query returns (`addArrayType`, `arrayParser` and `arraySerializer` in its
 * src/connection.js and src/types.js, ported here: the package exports neither). So a JS array
 * bound to a `text[]` or `uuid[]` parameter, and an array column read back, behave as before.
 */

/**
 * `element:array` type OIDs of the built-in types: the pairs below 10000 that the driver's
 * catalog query returns on PostgreSQL 15. Built-in OIDs are fixed in the server's catalog source
 * and never reused, so the pairs hold on every version that has the type. Arrays of the
 * database's own types (enums, domains, composites) are not here: they are read as text.
 */
const BUILTIN_ARRAY_TYPES = `
  16:1000 17:1001 18:1002 19:1003 20:1016 21:1005 22:1006 23:1007 24:1008 25:1009 26:1028 27:1010
  28:1011 29:1012 30:1013 71:210 75:270 81:272 83:273 114:199 142:143 600:1017 601:1018 602:1019
  603:1020 604:1027 628:629 650:651 700:1021 701:1022 718:719 774:775 790:791 829:1040 869:1041
  1033:1034 1042:1014 1043:1015 1082:1182 1083:1183 1114:1115 1184:1185 1186:1187 1266:1270
  1560:1561 1562:1563 1700:1231 1790:2201 2202:2207 2203:2208 2204:2209 2205:2210 2206:2211
  2275:1263 2950:2951 2970:2949 3220:3221 3614:3643 3615:3645 3642:3644 3734:3735 3769:3770
  3802:3807 3904:3905 3906:3907 3908:3909 3910:3911 3912:3913 3926:3927 4072:4073 4089:4090
  4096:4097 4191:4192 4451:6150 4532:6151 4533:6152 4534:6153 4535:6155 4536:6157 5038:5039
  5069:271
`;

/** `box[]` is the one array type whose elements are separated by `;`. */
const BOX_ARRAY = 1020;

type Parser = ((text: string) => unknown) & { array?: boolean };
type Serializer = (value: unknown) => unknown;

/** The parts of a postgres.js client's options that array types live in. */
interface TypeOptions {
  parsers: Record<number, Parser | undefined>;
  serializers: Record<number, Serializer | undefined>;
  shared: { typeArrayMap: Record<number, number> };
  transform: { undefined: unknown };
}

/**
 * Register the built-in array types on `client` as postgres.js's own catalog query would: a type
 * that already has both a parser and a serializer (the application's `types` option) is left
 * alone. Call it after drizzle has set its value handling, since an array type takes its element
 * type's parser as it is now.
 */
export function registerArrayTypes(client: postgres.Sql): void {
  const options = client.options as unknown as TypeOptions;
  for (const pair of BUILTIN_ARRAY_TYPES.trim().split(/\s+/)) {
    const [element, array] = pair.split(":").map(Number) as [number, number];
    if (options.parsers[array] !== undefined && options.serializers[array] !== undefined) continue;
    const parser = options.parsers[element];
    options.shared.typeArrayMap[element] = array;
    // `array` tells the driver to hand over the text without its opening brace.
    const parse: Parser = (text) =>
      parseArray({ i: 0, last: 0, str: "", quoted: false, char: "", previous: "" }, text, parser, array);
    parse.array = true;
    options.parsers[array] = parse;
    options.serializers[array] = (value) => serializeArray(value, options.serializers[element], options, array);
  }
}

/** Shared by the nested calls: after a nested array, `char` is the brace that closed it. */
interface ParseState {
  i: number;
  last: number;
  str: string;
  quoted: boolean;
  char: string;
  previous: string;
}

/** postgres.js's `arrayParser`: `text` is an array literal after its opening brace. */
function parseArray(s: ParseState, text: string, parser: Parser | undefined, array: number): unknown[] {
  const items: unknown[] = [];
  const delimiter = array === BOX_ARRAY ? ";" : ",";
  const element = (raw: string) => (parser === undefined ? raw : parser(raw));
  for (; s.i < text.length; s.i++) {
    s.char = text[s.i]!;
    const char = s.char;
    if (s.quoted) {
      if (char === "\\") {
        s.str += text[++s.i];
      } else if (char === '"') {
        items.push(element(s.str));
        s.str = "";
        s.quoted = text[s.i + 1] === '"';
        s.last = s.i + 2;
      } else {
        s.str += char;
      }
    } else if (char === '"') {
      s.quoted = true;
    } else if (char === "{") {
      s.last = ++s.i;
      items.push(parseArray(s, text, parser, array));
    } else if (char === "}") {
      s.quoted = false;
      if (s.last < s.i) items.push(element(text.slice(s.last, s.i)));
      s.last = s.i + 1;
      break;
    } else if (char === delimiter && s.previous !== "}" && s.previous !== '"') {
      items.push(element(text.slice(s.last, s.i)));
      s.last = s.i + 1;
    }
    s.previous = s.char;
  }
  if (s.last < s.i) items.push(element(text.slice(s.last, s.i + 1)));
  return items;
}

/** postgres.js's `arraySerializer`: a JS array as an array literal; anything else as it is. */
function serializeArray(
  value: unknown,
  serializer: Serializer | undefined,
  options: TypeOptions,
  array: number,
): unknown {
  if (!Array.isArray(value)) return value;
  if (value.length === 0) return "{}";
  const delimiter = array === BOX_ARRAY ? ";" : ",";
  const first: unknown = value[0];
  if (Array.isArray(first) && !(first as { type?: unknown }).type) {
    return `{${value.map((item) => serializeArray(item, serializer, options, array)).join(delimiter)}}`;
  }
  const items = value.map((item: unknown) => {
    let x = item;
    if (x === undefined) {
      x = options.transform.undefined;
      if (x === undefined) {
        throw Object.assign(new Error("UNDEFINED_VALUE: Undefined values are not allowed"), {
          code: "UNDEFINED_VALUE",
        });
      }
    }
    if (x === null) return "null";
    const typed = x as { type?: unknown; value?: unknown };
    // As in the driver, an element serializer that returns no string fails here (no .replace).
    const text = (serializer === undefined ? `${x}` : serializer(typed.type ? typed.value : x)) as string;
    return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  });
  return `{${items.join(delimiter)}}`;
}
