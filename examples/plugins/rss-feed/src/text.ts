// Plain text out of the little HTML feeds put in titles and names. Entry bodies are left as HTML
// (with mime_type text/html): the ETL turns those into text for search itself.

/** The HTML named character references feeds use most, beyond XML's five. */
const HTML_ENTITIES: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0', shy: '\u00ad',
  copy: '©', reg: '®', trade: '™', hellip: '…', mdash: '—', ndash: '–', minus: '−',
  lsquo: '‘', rsquo: '’', sbquo: '‚', ldquo: '“', rdquo: '”', bdquo: '„', laquo: '«', raquo: '»',
  lsaquo: '‹', rsaquo: '›', bull: '•', middot: '·', deg: '°', euro: '€', pound: '£', yen: '¥',
  cent: '¢', sect: '§', para: '¶', times: '×', divide: '÷', plusmn: '±', frac12: '½',
  frac14: '¼', frac34: '¾', iexcl: '¡', iquest: '¿', dagger: '†', Dagger: '‡', prime: '′',
  aacute: 'á', Aacute: 'Á', agrave: 'à', Agrave: 'À', acirc: 'â', Acirc: 'Â', auml: 'ä',
  Auml: 'Ä', atilde: 'ã', Atilde: 'Ã', aring: 'å', Aring: 'Å', aelig: 'æ', AElig: 'Æ',
  ccedil: 'ç', Ccedil: 'Ç', eacute: 'é', Eacute: 'É', egrave: 'è', Egrave: 'È', ecirc: 'ê',
  Ecirc: 'Ê', euml: 'ë', Euml: 'Ë', iacute: 'í', Iacute: 'Í', igrave: 'ì', Igrave: 'Ì',
  icirc: 'î', Icirc: 'Î', iuml: 'ï', Iuml: 'Ï', ntilde: 'ñ', Ntilde: 'Ñ', oacute: 'ó',
  Oacute: 'Ó', ograve: 'ò', Ograve: 'Ò', ocirc: 'ô', Ocirc: 'Ô', ouml: 'ö', Ouml: 'Ö',
  otilde: 'õ', Otilde: 'Õ', oslash: 'ø', Oslash: 'Ø', uacute: 'ú', Uacute: 'Ú', ugrave: 'ù',
  Ugrave: 'Ù', ucirc: 'û', Ucirc: 'Û', uuml: 'ü', Uuml: 'Ü', yacute: 'ý', Yacute: 'Ý',
  yuml: 'ÿ', szlig: 'ß', eth: 'ð', ETH: 'Ð', thorn: 'þ', THORN: 'Þ', oelig: 'œ', OElig: 'Œ',
  scaron: 'š', Scaron: 'Š', zcaron: 'ž', Zcaron: 'Ž',
};

const HTML_REFERENCE = /&(?:#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,8})|([A-Za-z][A-Za-z0-9]*));/g;

/** `text` with HTML character references (the common named ones, and numeric) decoded. */
export function decodeHtmlEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(HTML_REFERENCE, (whole, decimal?: string, hex?: string, name?: string) => {
    if (name !== undefined) return HTML_ENTITIES[name] ?? whole;
    const code = parseInt(decimal ?? hex!, decimal !== undefined ? 10 : 16);
    return code > 0 && code <= 0x10ffff && (code < 0xd800 || code > 0xdfff) ? String.fromCodePoint(code) : '\uFFFD';
  });
}

/** Runs of whitespace (no-break spaces included) as one space, trimmed. */
export function collapseWhitespace(text: string): string {
  return text.replace(/[\s\u00a0]+/g, ' ').trim();
}

/** The text of a short piece of HTML (a title): tags dropped, references decoded, one line. */
export function htmlToPlainText(html: string): string {
  return collapseWhitespace(decodeHtmlEntities(html.replace(/<!--[\s\S]*?-->/g, '').replace(/<[^>]*>/g, ' ')));
}

/** The first `max` characters of `text`, cut at a word when one ends near there, with `…`. */
export function snippet(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.lastIndexOf(' ', max);
  return `${text.slice(0, cut > max / 2 ? cut : max)}…`;
}
