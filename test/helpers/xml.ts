/**
 * A small, strict XML well-formedness check for the SVG that reports embed: balanced and properly
 * nested tags, quoted and unique attributes, only known entities, no stray `<` or `&` in text, and
 * exactly one root element.
 *
 *   const root = parseXml(svg); // throws an Error saying where the document is malformed
 *   root.name === 'svg' && root.attributes.viewBox !== undefined
 */

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** The element's own text, entities decoded. */
  text: string;
}

const NAME = /^[A-Za-z_:][-A-Za-z0-9_:.]*/;
const ENTITY = /^&(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);/;
const DECODE: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(raw: string, where: number): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i] as string;
    if (ch === '<') throw new Error(`raw "<" in text or attribute at offset ${where + i}`);
    if (ch !== '&') {
      out += ch;
      continue;
    }
    const m = ENTITY.exec(raw.slice(i));
    if (!m) throw new Error(`unescaped "&" at offset ${where + i}: ${raw.slice(i, i + 12)}`);
    const body = m[0].slice(1, -1);
    out += body.startsWith('#x')
      ? String.fromCodePoint(parseInt(body.slice(2), 16))
      : body.startsWith('#')
        ? String.fromCodePoint(parseInt(body.slice(1), 10))
        : DECODE[body];
    i += m[0].length - 1;
  }
  return out;
}

/** Parses `xml` strictly; returns its root element or throws naming the first problem. */
export function parseXml(xml: string): XmlElement {
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`${what} at offset ${i}: …${xml.slice(Math.max(0, i - 30), i + 30)}…`);
  };
  while (i < xml.length) {
    if (xml.startsWith('<!--', i)) {
      const end = xml.indexOf('-->', i + 4);
      if (end < 0) fail('unterminated comment');
      i = end + 3;
    } else if (xml.startsWith('<?', i)) {
      if (root || stack.length) fail('processing instruction after the root started');
      const end = xml.indexOf('?>', i + 2);
      if (end < 0) fail('unterminated processing instruction');
      i = end + 2;
    } else if (xml.startsWith('</', i)) {
      i += 2;
      const name = NAME.exec(xml.slice(i))?.[0] ?? fail('expected a closing tag name');
      i += name.length;
      while (/\s/.test(xml[i] ?? '')) i++;
      if (xml[i] !== '>') fail(`expected ">" to close </${name}`);
      i++;
      const open = stack.pop() ?? fail(`closing tag </${name}> without an open element`);
      if (open.name !== name) fail(`</${name}> closes <${open.name}>`);
    } else if (xml[i] === '<') {
      i++;
      const name = NAME.exec(xml.slice(i))?.[0] ?? fail('expected a tag name');
      i += name.length;
      const element: XmlElement = { name, attributes: {}, children: [], text: '' };
      for (;;) {
        const space = /^\s*/.exec(xml.slice(i))?.[0].length ?? 0;
        i += space;
        if (xml.startsWith('/>', i)) {
          i += 2;
          break;
        }
        if (xml[i] === '>') {
          i++;
          stack.push(element);
          break;
        }
        if (!space) fail(`expected whitespace before an attribute of <${name}>`);
        const attr = NAME.exec(xml.slice(i))?.[0] ?? fail(`expected an attribute name in <${name}>`);
        i += attr.length;
        if (xml[i] !== '=') fail(`expected "=" after ${attr}`);
        const quote = xml[i + 1];
        if (quote !== '"' && quote !== "'") fail(`expected a quoted value for ${attr}`);
        const end = xml.indexOf(quote as string, i + 2);
        if (end < 0) fail(`unterminated value of ${attr}`);
        if (attr in element.attributes) fail(`duplicate attribute ${attr} in <${name}>`);
        element.attributes[attr] = decode(xml.slice(i + 2, end), i + 2);
        i = end + 1;
      }
      const parent = stack[stack.length - (stack[stack.length - 1] === element ? 2 : 1)];
      if (parent) parent.children.push(element);
      else if (root) fail('a second root element');
      else root = element;
    } else {
      const end = xml.indexOf('<', i);
      const raw = xml.slice(i, end < 0 ? xml.length : end);
      const text = decode(raw, i);
      const current = stack[stack.length - 1];
      if (current) current.text += text;
      else if (text.trim()) fail('text outside the root element');
      i += raw.length;
    }
  }
  if (stack.length) throw new Error(`unclosed <${stack.map((e) => e.name).join('> <')}>`);
  if (!root) throw new Error('no root element');
  return root;
}

/** Every element under `root` (itself included) named `name`. */
export function elements(root: XmlElement, name: string): XmlElement[] {
  return [...(root.name === name ? [root] : []), ...root.children.flatMap((c) => elements(c, name))];
}
