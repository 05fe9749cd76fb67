/** How a delivery's body becomes its payload: shared by the recorder (at capture) and the replayer (at replay). */

/** The payload a delivery carries: JSON, or GitHub's form-encoded `payload=` variant. */
export function parsePayload(text: string | null, contentType: string | null): { payload: unknown; error: string | null } {
  if (text === null || text.length === 0) return { payload: null, error: text === null ? null : 'empty body' };
  let json = text;
  if (contentType?.startsWith('application/x-www-form-urlencoded')) {
    const form = new URLSearchParams(text).get('payload');
    if (form === null) return { payload: null, error: 'form-encoded body has no "payload" field' };
    json = form;
  }
  try {
    return { payload: JSON.parse(json), error: null };
  } catch (err) {
    return { payload: null, error: (err as Error).message };
  }
}
