// Who the page is to the API: the API key (kept in this browser's storage, sent only to this
// origin, because every call is a relative one) and the typed client made with it. Open mode has
// no key at all.
import { createItemgenClient, type ItemgenClient } from '../../client/client.ts';
import { ItemgenError } from '../../client/errors.ts';
import type { components } from '../../client/schema.ts';

export type Model = components['schemas']['Model'];
export type Limits = components['schemas']['ModelLimits'];

const STORAGE_KEY = 'itemgen.apiKey';

export interface Session {
  client: ItemgenClient;
  /** null in open mode. */
  apiKey: string | null;
  /** Headers of this session's own calls (the key, when there is one). */
  headers(extra?: Record<string, string>): Record<string, string>;
  /** An image (or any of the API's bytes) as a Blob; a redirect to storage is followed without the key. */
  blob(url: string): Promise<Blob>;
}

export const storedKey = (): string | null => {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
};
export const rememberKey = (key: string) => localStorage.setItem(STORAGE_KEY, key);
export const forgetKey = () => localStorage.removeItem(STORAGE_KEY);

export function openSession(apiKey: string | null): Session {
  const auth: Record<string, string> = apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
  return {
    client: createItemgenClient({ baseUrl: location.origin, ...(apiKey ? { apiKey } : {}) }),
    apiKey,
    headers: (extra = {}) => ({ ...auth, ...extra }),
    async blob(url) {
      // Only this origin's URLs get the key; a browser drops Authorization on a cross-origin redirect itself.
      const own = new URL(url, location.href).origin === location.origin;
      const res = await fetch(url, { headers: own ? auth : {} });
      if (!res.ok) throw await ItemgenError.fromResponse(res);
      return res.blob();
    },
  };
}

/** The served models with their limits, or 'needs_key' when the API refuses this session (401). */
export async function fetchModels(session: Session): Promise<Model[] | 'needs_key'> {
  const res = await fetch('/v1/models', { headers: session.headers({ Accept: 'application/json' }) });
  if (res.status === 401) return 'needs_key';
  if (!res.ok) throw await ItemgenError.fromResponse(res);
  return ((await res.json()) as { data: Model[] }).data;
}
