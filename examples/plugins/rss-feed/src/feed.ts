// RSS 2.0 (and 0.9x), RSS 1.0 (RDF) and Atom 1.0 feeds read into one shape of entries.

import { parseFeedDate, rfc3339 } from './dates';
import { hash53 } from './hash';
import { collapseWhitespace, decodeHtmlEntities, htmlToPlainText, snippet } from './text';
import {
  XML_NAMESPACE,
  XmlError,
  attribute,
  childElement,
  childElements,
  innerXml,
  parseXml,
  textContent,
  type XmlElement,
} from './xml';

const ATOM = 'http://www.w3.org/2005/Atom';
const RDF = 'http://www.w3.org/1999/02/22-rdf-syntax-ns#';
const RSS1 = 'http://purl.org/rss/1.0/';
const DC = 'http://purl.org/dc/elements/1.1/';
const CONTENT = 'http://purl.org/rss/1.0/modules/content/';
const XHTML = 'http://www.w3.org/1999/xhtml';

/** The longest title made up from an entry's text when it has none. */
const MADE_UP_TITLE_CHARS = 80;

/** Which format a feed was written in. */
export type FeedFormat = 'rss' | 'rdf' | 'atom';

/** Someone an entry names as its author. */
export interface FeedAuthor {
  /** The name, when given. */
  name?: string;
  /** The e-mail address, when given. */
  email?: string;
  /** A web page of theirs (Atom's `uri`), when given. */
  uri?: string;
}

/** A file attached to an entry (a podcast episode). */
export interface FeedEnclosure {
  /** Where it is. */
  url: string;
  /** Its media type, when given. */
  type?: string;
  /** Its size in bytes, when given. */
  length?: number;
}

/** One entry of a feed (an RSS item, an Atom entry), its text decoded. */
export interface FeedEntry {
  /** The feed's id for it: the RSS guid or Atom id; else its link; else `hash:` and a hash of its text. */
  id: string;
  /** Its title as plain text; made up from its text or link when it has none. */
  title: string;
  /** The web page it stands for, absolute. */
  link: string | null;
  /** Its body: RSS's content:encoded, else description; Atom's content, else summary. */
  content: string;
  /** The body's media type: `text/html` or `text/plain`. */
  contentType: 'text/html' | 'text/plain';
  /** The short form, when the feed gives one besides the body. */
  summary: string | null;
  /** When it was first published, RFC 3339 (RSS pubDate, Atom published). */
  published: string | null;
  /** When it last changed, RFC 3339 (Atom updated); null when the feed does not say. */
  updated: string | null;
  /** Its authors (the feed's, for an Atom entry that names none). */
  authors: FeedAuthor[];
  /** Its categories or tags. */
  categories: string[];
  /** Its attached files. */
  enclosures: FeedEnclosure[];
  /** Atom's out-of-line content (`content src=`), absolute. */
  contentSource: string | null;
  /** The entry's XML, exactly as the feed has it. */
  xml: string;
}

/** A whole feed. */
export interface Feed {
  /** Its format. */
  format: FeedFormat;
  /** Its title, plain text. */
  title: string;
  /** The web site it belongs to, absolute. */
  link: string | null;
  /** Its entries in document order, one per id (a repeated id keeps its first entry). */
  entries: FeedEntry[];
}

/** A document that is not a feed this reader can read. */
export class FeedError extends Error {
  /** Creates the error; `message` says what is wrong. */
  constructor(message: string) {
    super(message);
    this.name = 'FeedError';
  }
}

/** `href` resolved against `base`; undefined when it is no URL even then. */
function absolute(href: string | undefined, base: string): string | undefined {
  if (href === undefined || href.trim() === '') return undefined;
  try {
    return new URL(href.trim(), base).href;
  } catch {
    return undefined;
  }
}

/** The base URL in effect inside `element`, given the one outside it (`xml:base`). */
function baseOf(element: XmlElement, outer: string): string {
  return absolute(attribute(element, 'base', XML_NAMESPACE), outer) ?? outer;
}

/** The trimmed text of the first child `ns`:`local` of `element`, or undefined when absent or blank. */
function childText(element: XmlElement, ns: string, local: string): string | undefined {
  const child = childElement(element, ns, local);
  if (!child) return undefined;
  const text = textContent(child).trim();
  return text === '' ? undefined : text;
}

/** A feed date as RFC 3339, or null when absent or unreadable. */
function date(text: string | undefined): string | null {
  if (text === undefined) return null;
  const ms = parseFeedDate(text);
  return Number.isNaN(ms) ? null : rfc3339(ms);
}

/** Reads the feed `source` fetched from `url` (the base of its relative links). */
export function parseFeed(source: string, url: string): Feed {
  let root: XmlElement;
  try {
    root = parseXml(source);
  } catch (e) {
    if (e instanceof XmlError) throw new FeedError(`it is not well-formed XML: ${e.message}`);
    throw e;
  }
  const base = baseOf(root, url);
  let feed: Feed;
  if (root.local === 'rss' && root.ns === '') feed = readRss(source, root, base);
  else if (root.local === 'RDF' && root.ns === RDF) feed = readRdf(source, root, base);
  else if (root.local === 'feed' && root.ns === ATOM) feed = readAtom(source, root, base);
  else if (root.local === 'feed') throw new FeedError(`it is an Atom feed of another version than 1.0 (namespace ${JSON.stringify(root.ns)})`);
  else throw new FeedError(`it is neither RSS nor Atom: its root element is <${root.name}>`);
  feed.entries = uniqueById(feed.entries);
  return feed;
}

/** `entries` with each id once, the first entry of an id kept. */
function uniqueById(entries: FeedEntry[]): FeedEntry[] {
  const seen = new Set<string>();
  return entries.filter((entry) => {
    if (seen.has(entry.id)) return false;
    seen.add(entry.id);
    return true;
  });
}

/** The id of an entry that has none of its own: its link, else a hash of its text. */
function madeUpId(link: string | null, title: string, content: string, published: string | null): string {
  return link ?? `hash:${hash53(`${title}\n${content}\n${published ?? ''}`)}`;
}

/** The title of an entry, or one made up from its text or link when it has none. */
function titleOr(title: string, content: string, contentType: string, link: string | null): string {
  if (title !== '') return title;
  const text = contentType === 'text/html' ? htmlToPlainText(content) : collapseWhitespace(content);
  if (text !== '') return snippet(text, MADE_UP_TITLE_CHARS);
  return link ?? '';
}

// ---- RSS 2.0 and 0.9x ---------------------------------------------------------------------

/** An RSS 2.0 (or 0.9x) document, its root `rss` element read from `source`. */
function readRss(source: string, rss: XmlElement, base: string): Feed {
  const channel = childElement(rss, '', 'channel');
  if (!channel) throw new FeedError('it is an RSS document without a <channel>');
  const channelBase = baseOf(channel, base);
  // Items belong in the channel; RSS 0.9x documents sometimes put them beside it.
  const items = [...childElements(channel, '', 'item'), ...childElements(rss, '', 'item')];
  return {
    format: 'rss',
    title: rssTitle(childText(channel, '', 'title') ?? ''),
    link: absolute(childText(channel, '', 'link'), channelBase) ?? null,
    entries: items.map((item) => readRssItem(source, item, channelBase, '')),
  };
}

/** An RSS title: plain text by the spec, but often HTML-escaped once more in practice. */
function rssTitle(text: string): string {
  return collapseWhitespace(decodeHtmlEntities(text));
}

/** An RSS `author`: `jo@example.com (Jo Doe)`, or whatever the feed wrote. */
function rssAuthor(text: string): FeedAuthor {
  const m = /^\s*([^\s()<>]+@[^\s()<>]+)\s*(?:\((.*)\))?\s*$/.exec(text);
  if (!m) return { name: collapseWhitespace(text) };
  const name = m[2] === undefined ? undefined : collapseWhitespace(m[2]);
  return name ? { name, email: m[1] } : { email: m[1] };
}

/** One RSS item; `ns` is "" for RSS 2.0 and the RSS 1.0 namespace for RDF feeds. */
function readRssItem(source: string, item: XmlElement, outer: string, ns: string): FeedEntry {
  const base = baseOf(item, outer);
  const guidElement = childElement(item, ns, 'guid');
  const guid = guidElement ? textContent(guidElement).trim() : '';
  const guidIsLink = guidElement !== undefined && attribute(guidElement, 'isPermaLink') !== 'false';
  const atomLink = childElements(item, ATOM, 'link').find((l) => (attribute(l, 'rel') ?? 'alternate') === 'alternate');
  const link =
    absolute(childText(item, ns, 'link'), base) ??
    absolute(atomLink && attribute(atomLink, 'href'), base) ??
    (guidIsLink && /^https?:\/\//i.test(guid) ? guid : undefined) ??
    null;

  const description = childText(item, ns, 'description');
  const encoded = childText(item, CONTENT, 'encoded');
  const content = encoded ?? description ?? '';
  const published = date(childText(item, ns, 'pubDate') ?? childText(item, DC, 'date'));
  const updated = date(childText(item, ATOM, 'updated'));
  const title = titleOr(rssTitle(childText(item, ns, 'title') ?? ''), content, 'text/html', link);

  const authors: FeedAuthor[] = [];
  const author = childText(item, ns, 'author');
  if (author !== undefined) authors.push(rssAuthor(author));
  for (const creator of childElements(item, DC, 'creator')) {
    const name = collapseWhitespace(textContent(creator));
    if (name !== '' && !authors.some((a) => a.name === name)) authors.push({ name });
  }
  const categories = [...childElements(item, ns, 'category'), ...childElements(item, DC, 'subject')]
    .map((c) => collapseWhitespace(textContent(c)))
    .filter((c) => c !== '');
  const enclosures: FeedEnclosure[] = [];
  for (const enclosure of childElements(item, ns, 'enclosure')) {
    const url = absolute(attribute(enclosure, 'url'), base);
    if (url === undefined) continue;
    const found: FeedEnclosure = { url };
    const type = attribute(enclosure, 'type');
    if (type) found.type = type;
    const length = Number(attribute(enclosure, 'length'));
    if (Number.isSafeInteger(length) && length > 0) found.length = length;
    enclosures.push(found);
  }
  const rdfAbout = ns === '' ? undefined : attribute(item, 'about', RDF);

  return {
    id: guid !== '' ? guid : rdfAbout ?? madeUpId(link, title, content, published),
    title,
    link,
    content,
    contentType: 'text/html',
    summary: encoded !== undefined && description !== undefined ? description : null,
    published,
    updated,
    authors,
    categories,
    enclosures,
    contentSource: null,
    xml: source.slice(item.start, item.end),
  };
}

// ---- RSS 1.0 (RDF) ------------------------------------------------------------------------

/** An RSS 1.0 document, its root `rdf:RDF` element read from `source`. */
function readRdf(source: string, rdf: XmlElement, base: string): Feed {
  const channel = childElement(rdf, RSS1, 'channel');
  return {
    format: 'rdf',
    title: channel ? rssTitle(childText(channel, RSS1, 'title') ?? '') : '',
    link: (channel && absolute(childText(channel, RSS1, 'link'), base)) ?? null,
    entries: childElements(rdf, RSS1, 'item').map((item) => readRssItem(source, item, base, RSS1)),
  };
}

// ---- Atom 1.0 ------------------------------------------------------------------------------

/** An Atom text construct's value and media type; undefined when the element is absent. */
function atomText(source: string, element: XmlElement | undefined): { value: string; type: 'text/html' | 'text/plain' } | undefined {
  if (!element) return undefined;
  const type = (attribute(element, 'type') ?? 'text').toLowerCase();
  if (type === 'xhtml') {
    // The content is one XHTML div, which is not part of it.
    const div = childElement(element, XHTML, 'div');
    return { value: innerXml(source, div ?? element).trim(), type: 'text/html' };
  }
  if (type === 'html' || type === 'text/html') return { value: textContent(element).trim(), type: 'text/html' };
  if (type === 'text' || type.startsWith('text/')) return { value: textContent(element).trim(), type: 'text/plain' };
  // Another media type (XML inline, or Base64): nothing this reader can index.
  return undefined;
}

/** Atom `author`/`contributor` elements as authors. */
function atomPeople(elements: XmlElement[], base: string): FeedAuthor[] {
  const people: FeedAuthor[] = [];
  for (const person of elements) {
    const found: FeedAuthor = {};
    const name = childText(person, ATOM, 'name');
    if (name !== undefined) found.name = collapseWhitespace(name);
    const email = childText(person, ATOM, 'email');
    if (email !== undefined) found.email = email;
    const uri = absolute(childText(person, ATOM, 'uri'), baseOf(person, base));
    if (uri !== undefined) found.uri = uri;
    if (Object.keys(found).length > 0) people.push(found);
  }
  return people;
}

/** The alternate link among `element`'s links (an HTML one first), absolute. */
function atomAlternate(element: XmlElement, base: string): string | null {
  const alternates = childElements(element, ATOM, 'link').filter((l) => (attribute(l, 'rel') ?? 'alternate') === 'alternate');
  const chosen = alternates.find((l) => /html/i.test(attribute(l, 'type') ?? 'text/html')) ?? alternates[0];
  return (chosen && absolute(attribute(chosen, 'href'), baseOf(chosen, base))) ?? null;
}

/** An Atom 1.0 document, its root `feed` element read from `source`. */
function readAtom(source: string, feed: XmlElement, base: string): Feed {
  const feedAuthors = atomPeople(childElements(feed, ATOM, 'author'), base);
  const titleOf = (element: XmlElement): string => {
    const title = atomText(source, childElement(element, ATOM, 'title'));
    if (!title) return '';
    return title.type === 'text/html' ? htmlToPlainText(title.value) : collapseWhitespace(title.value);
  };
  return {
    format: 'atom',
    title: titleOf(feed),
    link: atomAlternate(feed, base),
    entries: childElements(feed, ATOM, 'entry').map((entry) => {
      const entryBase = baseOf(entry, base);
      const link = atomAlternate(entry, entryBase);
      const contentElement = childElement(entry, ATOM, 'content');
      const content = atomText(source, contentElement);
      const summary = atomText(source, childElement(entry, ATOM, 'summary'));
      const body = content ?? summary ?? { value: '', type: 'text/plain' as const };
      const published = date(childText(entry, ATOM, 'published'));
      const updated = date(childText(entry, ATOM, 'updated'));
      const title = titleOr(titleOf(entry), body.value, body.type, link);
      let authors = atomPeople(childElements(entry, ATOM, 'author'), entryBase);
      if (authors.length === 0) {
        const sourceFeed = childElement(entry, ATOM, 'source');
        authors = sourceFeed ? atomPeople(childElements(sourceFeed, ATOM, 'author'), entryBase) : [];
      }
      if (authors.length === 0) authors = feedAuthors;
      const enclosures: FeedEnclosure[] = [];
      for (const l of childElements(entry, ATOM, 'link')) {
        if (attribute(l, 'rel') !== 'enclosure') continue;
        const url = absolute(attribute(l, 'href'), baseOf(l, entryBase));
        if (url === undefined) continue;
        const found: FeedEnclosure = { url };
        const type = attribute(l, 'type');
        if (type) found.type = type;
        const length = Number(attribute(l, 'length'));
        if (Number.isSafeInteger(length) && length > 0) found.length = length;
        enclosures.push(found);
      }
      const id = childText(entry, ATOM, 'id');
      return {
        id: id ?? madeUpId(link, title, body.value, published ?? updated),
        title,
        link,
        content: body.value,
        contentType: body.type,
        summary: content && summary ? summary.value : null,
        published,
        updated,
        authors,
        categories: childElements(entry, ATOM, 'category')
          .map((c) => collapseWhitespace(attribute(c, 'label') ?? attribute(c, 'term') ?? ''))
          .filter((c) => c !== ''),
        enclosures,
        contentSource: (contentElement && absolute(attribute(contentElement, 'src'), baseOf(contentElement, entryBase))) ?? null,
        xml: source.slice(entry.start, entry.end),
      };
    }),
  };
}
