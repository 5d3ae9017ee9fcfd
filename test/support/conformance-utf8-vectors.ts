// UTF-8 test vectors for Autobahn category 6, grouped as Autobahn groups Markus Kuhn's UTF-8
// decoder stress test: each is a whole text payload, valid or not under RFC 3629 (which is what
// RFC 6455 requires: no overlongs, no surrogates, nothing above U+10FFFF; noncharacters are fine).

export interface Utf8Vector {
  id: string;
  description: string;
  bytes: Buffer;
  valid: boolean;
}

function hex(spaced: string): Buffer {
  return Buffer.from(spaced.replace(/\s+/g, ''), 'hex');
}

const KOSME = hex('ce ba e1 bd b9 cf 83 ce bc ce b5'); // "κόσμε"
const KOSME_BOUNDARIES = new Set([2, 5, 7, 9, 11]);

/** Description, bytes, and validity when it differs from the group's. */
type Item = [string, Buffer, boolean?];

interface Group {
  section: string;
  title: string;
  valid: boolean;
  items: Item[];
}

const lastByteMissing: Item[] = [
  ['2-byte sequence U+0000 with last byte missing', hex('c0')],
  ['3-byte sequence U+0000 with last byte missing', hex('e0 80')],
  ['4-byte sequence U+0000 with last byte missing', hex('f0 80 80')],
  ['5-byte sequence U+0000 with last byte missing', hex('f8 80 80 80')],
  ['6-byte sequence U+0000 with last byte missing', hex('fc 80 80 80 80')],
  ['2-byte sequence U+07FF with last byte missing', hex('df')],
  ['3-byte sequence U+FFFF with last byte missing', hex('ef bf')],
  ['4-byte sequence U+1FFFFF with last byte missing', hex('f7 bf bf')],
  ['5-byte sequence U+3FFFFFF with last byte missing', hex('fb bf bf bf')],
  ['6-byte sequence U+7FFFFFFF with last byte missing', hex('fd bf bf bf bf')],
];

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** Every byte in [from, to], each followed by a space, as Kuhn's "lonely start characters". */
function lonely(from: number, to: number): Buffer {
  return Buffer.from(range(from, to).flatMap((b) => [b, 0x20]));
}

function encodePoint(cp: number): Buffer {
  return Buffer.from(String.fromCodePoint(cp), 'utf8');
}

const groups: Group[] = [
  {
    section: '6.5',
    title: 'valid text',
    valid: true,
    items: [
      ['"κόσμε"', KOSME],
      ['"Hello-µ@ßöäüàá-UTF-8!!"', Buffer.from('Hello-µ@ßöäüàá-UTF-8!!', 'utf8')],
      ['mixed 1- to 4-byte characters', Buffer.from('a\u00e9\u20ac\u{1f600}z', 'utf8')],
      ['NUL bytes inside text', hex('41 00 42 00 43')],
      ['byte order mark, which must not be stripped', hex('ef bb bf 41')],
    ],
  },
  {
    section: '6.6',
    title: 'prefixes of "κόσμε", valid only when ending on a character boundary',
    valid: false,
    items: range(1, KOSME.length).map((n) => [`first ${n} bytes`, KOSME.subarray(0, n), KOSME_BOUNDARIES.has(n)]),
  },
  {
    section: '6.7',
    title: 'first possible sequence of each length',
    valid: true,
    items: [
      ['1 byte: U+0000', hex('00')],
      ['2 bytes: U+0080', hex('c2 80')],
      ['3 bytes: U+0800', hex('e0 a0 80')],
      ['4 bytes: U+10000', hex('f0 90 80 80')],
    ],
  },
  {
    section: '6.8',
    title: 'first possible 5- and 6-byte sequences',
    valid: false,
    items: [
      ['5 bytes: U+200000', hex('f8 88 80 80 80')],
      ['6 bytes: U+4000000', hex('fc 84 80 80 80 80')],
    ],
  },
  {
    section: '6.9',
    title: 'last possible sequence of each length',
    valid: true,
    items: [
      ['1 byte: U+007F', hex('7f')],
      ['2 bytes: U+07FF', hex('df bf')],
      ['3 bytes: U+FFFF', hex('ef bf bf')],
      ['4 bytes: U+10FFFF', hex('f4 8f bf bf')],
    ],
  },
  {
    section: '6.10',
    title: 'last possible sequences beyond U+10FFFF',
    valid: false,
    items: [
      ['4 bytes: U+1FFFFF', hex('f7 bf bf bf')],
      ['5 bytes: U+3FFFFFF', hex('fb bf bf bf bf')],
      ['6 bytes: U+7FFFFFFF', hex('fd bf bf bf bf bf')],
    ],
  },
  {
    section: '6.11',
    title: 'other boundary conditions',
    valid: true,
    items: [
      ['U+D7FF', hex('ed 9f bf')],
      ['U+E000', hex('ee 80 80')],
      ['U+FFFD', hex('ef bf bd')],
      ['U+10FFFF', hex('f4 8f bf bf')],
    ],
  },
  {
    section: '6.11',
    title: 'other boundary conditions',
    valid: false,
    items: [['U+110000', hex('f4 90 80 80')]],
  },
  {
    section: '6.12',
    title: 'unexpected continuation bytes',
    valid: false,
    items: [
      ['first continuation byte 0x80', hex('80')],
      ['last continuation byte 0xbf', hex('bf')],
      ['2 continuation bytes', hex('80 bf')],
      ['3 continuation bytes', hex('80 bf 80')],
      ['4 continuation bytes', hex('80 bf 80 bf')],
      ['5 continuation bytes', hex('80 bf 80 bf 80')],
      ['6 continuation bytes', hex('80 bf 80 bf 80 bf')],
      ['all 64 continuation bytes', Buffer.from(range(0x80, 0xbf))],
    ],
  },
  {
    section: '6.13',
    title: 'lonely start characters',
    valid: false,
    items: [
      ['all 32 first bytes of 2-byte sequences, each followed by a space', lonely(0xc0, 0xdf)],
      ['all 16 first bytes of 3-byte sequences, each followed by a space', lonely(0xe0, 0xef)],
      ['all 8 first bytes of 4-byte sequences, each followed by a space', lonely(0xf0, 0xf7)],
      ['all 4 first bytes of 5-byte sequences, each followed by a space', lonely(0xf8, 0xfb)],
      ['both first bytes of 6-byte sequences, each followed by a space', lonely(0xfc, 0xfd)],
    ],
  },
  { section: '6.14', title: 'sequences with the last continuation byte missing', valid: false, items: lastByteMissing },
  {
    section: '6.15',
    title: 'concatenation of incomplete sequences',
    valid: false,
    items: [['all of 6.14 concatenated', Buffer.concat(lastByteMissing.map(([, b]) => b))]],
  },
  {
    section: '6.16',
    title: 'impossible bytes',
    valid: false,
    items: [
      ['0xfe', hex('fe')],
      ['0xff', hex('ff')],
      ['0xfe 0xfe 0xff 0xff', hex('fe fe ff ff')],
    ],
  },
  {
    section: '6.17',
    title: 'overlong "/"',
    valid: false,
    items: [
      ['2 bytes', hex('c0 af')],
      ['3 bytes', hex('e0 80 af')],
      ['4 bytes', hex('f0 80 80 af')],
      ['5 bytes', hex('f8 80 80 80 af')],
      ['6 bytes', hex('fc 80 80 80 80 af')],
    ],
  },
  {
    section: '6.18',
    title: 'maximum overlong sequences',
    valid: false,
    items: [
      ['2 bytes: U+007F', hex('c1 bf')],
      ['3 bytes: U+07FF', hex('e0 9f bf')],
      ['4 bytes: U+FFFF', hex('f0 8f bf bf')],
      ['5 bytes: U+1FFFFF', hex('f8 87 bf bf bf')],
      ['6 bytes: U+3FFFFFF', hex('fc 83 bf bf bf bf')],
    ],
  },
  {
    section: '6.19',
    title: 'overlong NUL',
    valid: false,
    items: [
      ['2 bytes', hex('c0 80')],
      ['3 bytes', hex('e0 80 80')],
      ['4 bytes', hex('f0 80 80 80')],
      ['5 bytes', hex('f8 80 80 80 80')],
      ['6 bytes', hex('fc 80 80 80 80 80')],
    ],
  },
  {
    section: '6.20',
    title: 'single UTF-16 surrogates',
    valid: false,
    items: [
      ['U+D800', hex('ed a0 80')],
      ['U+DB7F', hex('ed ad bf')],
      ['U+DB80', hex('ed ae 80')],
      ['U+DBFF', hex('ed af bf')],
      ['U+DC00', hex('ed b0 80')],
      ['U+DF80', hex('ed be 80')],
      ['U+DFFF', hex('ed bf bf')],
    ],
  },
  {
    section: '6.21',
    title: 'paired UTF-16 surrogates',
    valid: false,
    items: [
      ['U+D800 U+DC00', hex('ed a0 80 ed b0 80')],
      ['U+D800 U+DFFF', hex('ed a0 80 ed bf bf')],
      ['U+DB7F U+DC00', hex('ed ad bf ed b0 80')],
      ['U+DB7F U+DFFF', hex('ed ad bf ed bf bf')],
      ['U+DB80 U+DC00', hex('ed ae 80 ed b0 80')],
      ['U+DB80 U+DFFF', hex('ed ae 80 ed bf bf')],
      ['U+DBFF U+DC00', hex('ed af bf ed b0 80')],
      ['U+DBFF U+DFFF', hex('ed af bf ed bf bf')],
    ],
  },
  {
    section: '6.22',
    title: 'noncharacters (valid UTF-8)',
    valid: true,
    items: range(0, 16).flatMap((plane): Item[] => {
      const base = plane * 0x10000;
      const name = (cp: number): string => `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
      return [
        [name(base + 0xfffe), encodePoint(base + 0xfffe)],
        [name(base + 0xffff), encodePoint(base + 0xffff)],
      ];
    }),
  },
  {
    section: '6.23',
    title: 'more noncharacters and specials (valid UTF-8)',
    valid: true,
    items: [
      ['U+FDD0 to U+FDEF', Buffer.from(range(0xfdd0, 0xfdef).map((cp) => String.fromCodePoint(cp)).join(''), 'utf8')],
      ['U+FFF9 to U+FFFD', Buffer.from(range(0xfff9, 0xfffd).map((cp) => String.fromCodePoint(cp)).join(''), 'utf8')],
    ],
  },
];

export const UTF8_VECTORS: Utf8Vector[] = groups.flatMap((group) => {
  const earlier = groups.slice(0, groups.indexOf(group)).filter((g) => g.section === group.section);
  const offset = earlier.reduce((n, g) => n + g.items.length, 0);
  return group.items.map(([description, bytes, valid], i) => ({
    id: `${group.section}.${offset + i + 1}`,
    description: `${group.title}: ${description}`,
    bytes,
    valid: valid ?? group.valid,
  }));
});
