// A small XML parser: enough of XML 1.0 and Namespaces in XML for feeds, with no DOM.
//
// It reads elements, attributes, text, CDATA sections, comments, processing instructions and a
// DOCTYPE (skipped, internal subset included: declared entities are not expanded, so an entity
// bomb cannot explode). The five predefined entities and numeric character references are
// decoded; another named reference (`&nbsp;`, which HTML-minded feeds write) and a `&` that
// starts no reference are kept as written, so HTML content keeps them for its own decoding.
// Structure is checked strictly — a tag closed by the wrong end tag, an unclosed element, a
// stray `<` — because a feed cut short must fail rather than sync half its entries; the error
// names the line and column. An undeclared prefix is tolerated (its elements are in a namespace
// of their own, UNDECLARED + prefix), since feeds in the wild write `media:` without declaring it.

/** One element of a parsed document. */
export interface XmlElement {
  /** The name as written, prefix included (`dc:creator`). */
  readonly name: string;
  /** The name without its prefix (`creator`). */
  readonly local: string;
  /** The namespace URI the element is in, or "" for none. */
  readonly ns: string;
  /** The attributes, in the order written, values decoded. */
  readonly attributes: readonly XmlAttribute[];
  /** Child elements and text (CDATA included), in document order. */
  readonly children: (XmlElement | string)[];
  /** Where the element's start tag begins in the source. */
  readonly start: number;
  /** Where its content begins: just after the start tag. */
  readonly innerStart: number;
  /** Where its content ends: at the end tag (`innerStart` for an empty element). */
  innerEnd: number;
  /** Just after its end tag. */
  end: number;
}

/** One attribute of an element. */
export interface XmlAttribute {
  /** The name as written (`xml:base`). */
  readonly name: string;
  /** The name without its prefix. */
  readonly local: string;
  /** Its namespace: the prefix's, or "" for an attribute without a prefix. */
  readonly ns: string;
  /** The value, references decoded. */
  readonly value: string;
}

/** A document that is not well-formed enough to read; says where. */
export class XmlError extends Error {
  /** Creates the error for `problem` at `offset` of `source`. */
  constructor(
    problem: string,
    source: string,
    offset: number,
    /** The line, from 1. */
    readonly line = lineOf(source, offset),
    /** The column, from 1. */
    readonly column = offset - source.lastIndexOf('\n', offset - 1),
  ) {
    super(`line ${line}, column ${column}: ${problem}`);
    this.name = 'XmlError';
  }
}

/** The namespace the `xml` prefix is bound to. */
export const XML_NAMESPACE = 'http://www.w3.org/XML/1998/namespace';

/** What an undeclared prefix's namespace starts with: no real namespace URI does. */
export const UNDECLARED = 'undeclared-prefix:';

/** How deep elements may nest; deeper is refused (no feed needs it). */
const MAX_DEPTH = 512;

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
const REFERENCE = /&(?:#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,8})|([A-Za-z_][A-Za-z0-9._-]*));/g;
const NAME = /[^\s/>=<"'!?]+/y;
const SPACE = /\s*/y;

/** The line (from 1) of `offset` in `source`. */
function lineOf(source: string, offset: number): number {
  let line = 1;
  for (let i = source.indexOf('\n'); i !== -1 && i < offset; i = source.indexOf('\n', i + 1)) line++;
  return line;
}

/** `code` as a string, or U+FFFD when it is no character XML allows. */
function character(code: number): string {
  const allowed =
    code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff);
  return allowed ? String.fromCodePoint(code) : '\uFFFD';
}

/**
 * `text` with the predefined entities and character references decoded; any other `&…;` and a
 * bare `&` are kept as written.
 */
export function decodeReferences(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(REFERENCE, (whole, decimal?: string, hex?: string, name?: string) => {
    if (decimal !== undefined) return character(parseInt(decimal, 10));
    if (hex !== undefined) return character(parseInt(hex, 16));
    return PREDEFINED[name!] ?? whole;
  });
}

/** `name` split at its colon: [prefix or "", local part]. */
function splitName(name: string): [string, string] {
  const colon = name.indexOf(':');
  return colon > 0 ? [name.slice(0, colon), name.slice(colon + 1)] : ['', name];
}

/** The scope of an element that declares no namespace (never written to). */
const NO_BINDINGS: ReadonlyMap<string, string> = new Map();

/** A start tag read from the source. */
interface StartTag {
  /** The element's name as written. */
  name: string;
  /** Its attributes as written, values decoded. */
  attributes: { name: string; value: string }[];
  /** Whether it ends with `/>`. */
  selfClosing: boolean;
  /** Just after its `>`. */
  end: number;
}

/** Parses `source` and answers its root element. */
export function parseXml(source: string): XmlElement {
  let pos = source.charCodeAt(0) === 0xfeff ? 1 : 0;
  const stack: XmlElement[] = [];
  /** The prefix bindings in scope, one map per open element (the bottom one for the document). */
  const scopes: ReadonlyMap<string, string>[] = [new Map([['xml', XML_NAMESPACE], ['', '']])];
  let root: XmlElement | undefined;

  const fail = (problem: string, at = pos): never => {
    throw new XmlError(problem, source, at);
  };
  const resolve = (prefix: string, scope: ReadonlyMap<string, string>[]): string => {
    for (let i = scope.length - 1; i >= 0; i--) {
      const ns = scope[i].get(prefix);
      if (ns !== undefined) return ns;
    }
    // An undeclared prefix (feeds write `media:` without declaring it) is a namespace of its
    // own that matches nothing, rather than a reason to drop the whole feed.
    return prefix === '' ? '' : `${UNDECLARED}${prefix}`;
  };
  const skipPast = (terminator: string, what: string): void => {
    const at = source.indexOf(terminator, pos);
    if (at === -1) fail(`${what} is not closed (no \`${terminator}\`)`);
    pos = at + terminator.length;
  };

  const readStartTag = (): StartTag => {
    const tagStart = pos;
    pos++; // '<'
    NAME.lastIndex = pos;
    const nameMatch = NAME.exec(source);
    if (!nameMatch) fail('a `<` that starts no tag (write `&lt;` for a literal one)', tagStart);
    const name = nameMatch![0];
    pos = NAME.lastIndex;
    const attributes: { name: string; value: string }[] = [];
    for (;;) {
      SPACE.lastIndex = pos;
      SPACE.exec(source);
      const spaced = SPACE.lastIndex > pos;
      pos = SPACE.lastIndex;
      const c = source[pos];
      if (c === '>') return { name, attributes, selfClosing: false, end: pos + 1 };
      if (c === '/' && source[pos + 1] === '>') return { name, attributes, selfClosing: true, end: pos + 2 };
      if (c === undefined) fail(`the start tag <${name}> is not closed`, tagStart);
      if (!spaced) fail(`unexpected \`${c}\` in the start tag <${name}>`);
      NAME.lastIndex = pos;
      const attr = NAME.exec(source);
      if (!attr) fail(`unexpected \`${c}\` in the start tag <${name}>`);
      pos = NAME.lastIndex;
      SPACE.lastIndex = pos;
      SPACE.exec(source);
      pos = SPACE.lastIndex;
      if (source[pos] !== '=') fail(`the attribute \`${attr![0]}\` of <${name}> has no value`);
      pos++;
      SPACE.lastIndex = pos;
      SPACE.exec(source);
      pos = SPACE.lastIndex;
      const quote = source[pos];
      if (quote !== '"' && quote !== "'") fail(`the value of the attribute \`${attr![0]}\` of <${name}> is not quoted`);
      const close = source.indexOf(quote, pos + 1);
      if (close === -1) fail(`the value of the attribute \`${attr![0]}\` of <${name}> is not closed`);
      const raw = source.slice(pos + 1, close);
      if (raw.includes('<')) fail(`the value of the attribute \`${attr![0]}\` of <${name}> holds a \`<\``);
      // Attribute-value normalisation: literal whitespace characters become spaces.
      attributes.push({ name: attr![0], value: decodeReferences(raw.replace(/[\t\n\r]/g, ' ')) });
      pos = close + 1;
    }
  };

  const openElement = (tag: StartTag, tagStart: number): void => {
    // Most elements declare no namespace: they share one empty scope instead of a Map each.
    let bindings: Map<string, string> | undefined;
    for (const { name, value } of tag.attributes) {
      if (name !== 'xmlns' && !name.startsWith('xmlns:')) continue;
      bindings ??= new Map();
      bindings.set(name === 'xmlns' ? '' : name.slice(6), value);
    }
    const scope = bindings === undefined ? scopes : [...scopes, bindings];
    const [prefix, local] = splitName(tag.name);
    const element: XmlElement = {
      name: tag.name,
      local,
      ns: resolve(prefix, scope),
      attributes: tag.attributes.map(({ name, value }) => {
        const [attrPrefix, attrLocal] = splitName(name);
        const ns = attrPrefix === '' || name.startsWith('xmlns:') ? '' : resolve(attrPrefix, scope);
        return { name, local: attrLocal, ns, value };
      }),
      children: [],
      start: tagStart,
      innerStart: tag.end,
      innerEnd: tag.end,
      end: tag.end,
    };
    if (stack.length > 0) stack[stack.length - 1].children.push(element);
    else if (root) fail(`a second root element <${tag.name}> (the first is <${root.name}>)`, tagStart);
    else root = element;
    if (tag.selfClosing) return;
    if (stack.length >= MAX_DEPTH) fail(`elements nest deeper than ${MAX_DEPTH}`, tagStart);
    stack.push(element);
    scopes.push(bindings ?? NO_BINDINGS);
  };

  const closeElement = (): void => {
    const tagStart = pos;
    const close = source.indexOf('>', pos);
    if (close === -1) fail('an end tag is not closed', tagStart);
    const name = source.slice(pos + 2, close).trim();
    const open = stack.pop();
    if (!open) fail(`the end tag </${name}> closes nothing`, tagStart);
    if (open!.name !== name) fail(`the end tag </${name}> closes <${open!.name}>`, tagStart);
    scopes.pop();
    open!.innerEnd = tagStart;
    open!.end = close + 1;
    pos = close + 1;
  };

  const addText = (text: string): void => {
    if (stack.length > 0) {
      stack[stack.length - 1].children.push(text);
    } else if (text.trim() !== '') {
      fail('text outside the root element');
    }
  };

  while (pos < source.length) {
    const lt = source.indexOf('<', pos);
    if (lt !== pos) {
      const end = lt === -1 ? source.length : lt;
      addText(decodeReferences(source.slice(pos, end)));
      pos = end;
      continue;
    }
    if (source.startsWith('<!--', pos)) {
      skipPast('-->', 'a comment');
    } else if (source.startsWith('<![CDATA[', pos)) {
      const start = pos + 9;
      skipPast(']]>', 'a CDATA section');
      if (stack.length === 0) fail('a CDATA section outside the root element', start - 9);
      addText(source.slice(start, pos - 3));
    } else if (source.startsWith('<?', pos)) {
      skipPast('?>', 'a processing instruction');
    } else if (source.startsWith('<!DOCTYPE', pos)) {
      if (root) fail('a DOCTYPE after the root element');
      // The internal subset, if any, is in brackets; declarations in it may hold `>`.
      let depth = 0;
      let i = pos + 9;
      for (; i < source.length; i++) {
        const c = source[i];
        if (c === '[') depth++;
        else if (c === ']') depth--;
        else if ((c === '"' || c === "'") && depth > 0) {
          const close = source.indexOf(c, i + 1);
          if (close === -1) break;
          i = close;
        } else if (c === '>' && depth <= 0) break;
      }
      if (i >= source.length) fail('the DOCTYPE is not closed');
      pos = i + 1;
    } else if (source[pos + 1] === '/') {
      closeElement();
    } else {
      const tagStart = pos;
      const tag = readStartTag();
      pos = tag.end;
      openElement(tag, tagStart);
    }
  }
  if (stack.length > 0) {
    const open = stack[stack.length - 1];
    fail(`the document ends inside <${open.name}> (it was cut short?)`, open.start);
  }
  if (!root) fail('no root element: the document is empty', 0);
  return root!;
}

/** The child elements of `element`, optionally only those named `local` in namespace `ns`. */
export function childElements(element: XmlElement, ns?: string, local?: string): XmlElement[] {
  const found: XmlElement[] = [];
  for (const child of element.children) {
    if (typeof child === 'string') continue;
    if (local !== undefined && (child.local !== local || child.ns !== ns)) continue;
    found.push(child);
  }
  return found;
}

/** The first child element of `element` named `local` in namespace `ns`. */
export function childElement(element: XmlElement, ns: string, local: string): XmlElement | undefined {
  for (const child of element.children) {
    if (typeof child !== 'string' && child.local === local && child.ns === ns) return child;
  }
  return undefined;
}

/** The value of the attribute `local` (in namespace `ns`, "" for an unprefixed one). */
export function attribute(element: XmlElement, local: string, ns = ''): string | undefined {
  return element.attributes.find((a) => a.local === local && a.ns === ns)?.value;
}

/** Every character of text inside `element`, descendants included, in document order. */
export function textContent(element: XmlElement): string {
  let text = '';
  for (const child of element.children) text += typeof child === 'string' ? child : textContent(child);
  return text;
}

/** The source of `element`'s content between its tags, markup and references as written. */
export function innerXml(source: string, element: XmlElement): string {
  return source.slice(element.innerStart, element.innerEnd);
}
