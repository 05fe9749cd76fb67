/**
 * Escaping for the report formats. Every string a report shows may come from a
 * webhook payload (a comment body, a branch name), so each format escapes at the
 * point where text meets markup, never earlier.
 */

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

// XML 1.0 allows only #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]:
// other C0 controls, U+FFFE/U+FFFF and unpaired surrogates make the document ill-formed
// even as character references, so they are spelled out as `\uXXXX` text instead.
const XML_FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Escapes text for XML element content; characters XML 1.0 forbids become `\uXXXX`. */
export function escapeXmlText(text: string): string {
  return text.replace(XML_FORBIDDEN, unicodeEscape).replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);
}

/**
 * Escapes text for a double-quoted XML attribute. Tabs and line breaks become
 * character references, because a parser normalizes literal ones in attributes to spaces.
 */
export function escapeXmlAttr(text: string): string {
  return escapeXmlText(text).replace(/[\t\n\r]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** `\u0007` for U+0007: a visible, reversible stand-in for a character a format cannot carry. */
export function unicodeEscape(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

// Inline Markdown that could turn a value into a link, emphasis, HTML, an entity or a
// table cell boundary. Backslash escapes work for all ASCII punctuation in CommonMark.
const MD_INLINE = /[\\`*_[\]<>|~&!#]/g;

/** Escapes text for inline Markdown (headings, list items, table cells): it renders literally, on one line. */
export function escapeMarkdown(text: string): string {
  return text.replace(MD_INLINE, (c) => `\\${c}`).replace(/\r\n|\r|\n/g, ' ');
}

/**
 * Escapes text for one GFM table cell: inline escapes, and line breaks as `<br>`
 * because a raw newline would end the table row.
 */
export function escapeMarkdownCell(text: string): string {
  return text
    .split(/\r\n|\r|\n/)
    .map((line) => line.replace(MD_INLINE, (c) => `\\${c}`))
    .join('<br>');
}

/**
 * A Markdown code span around one line of text, with a backtick fence longer than any
 * run inside it. In a table cell, pipes are escaped too: GFM splits cells before it
 * parses code spans, and removes the backslash again inside the span.
 */
export function markdownCode(text: string, inTable = false): string {
  const line = text.replace(/\r\n|\r|\n/g, ' ');
  const longestRun = Math.max(0, ...(line.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longestRun + 1);
  // A span that starts or ends with a backtick needs a space so the fence is unambiguous.
  const pad = line.startsWith('`') || line.endsWith('`') ? ' ' : '';
  const body = inTable ? line.replace(/\|/g, '\\|') : line;
  return `${fence}${pad}${body}${pad}${fence}`;
}

/** A fenced code block whose fence no line of `text` can close early. */
export function markdownFence(text: string, info = ''): string {
  const longestRun = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(Math.max(3, longestRun + 1));
  return `${fence}${info}\n${text.replace(/\n$/, '')}\n${fence}`;
}
