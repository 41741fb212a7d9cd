// Images behind the API key: fetched with it and shown as blob: URLs (an <img src> cannot send a
// header). Kept per URL while the page lives, at most MAX of them (the oldest are let go); the
// browser's HTTP cache holds the bytes across visits (the API answers immutable).
import { useEffect, useState } from 'preact/hooks';
import type { Session } from './session.ts';

const MAX = 400;

export interface LoadedImage {
  blob: Blob;
  /** A blob: URL of it, for <img> and download links. */
  url: string;
}
const loaded = new Map<string, Promise<LoadedImage>>();

export function loadImage(session: Session, url: string): Promise<LoadedImage> {
  let found = loaded.get(url);
  if (found) {
    loaded.delete(url);
    loaded.set(url, found);
    return found;
  }
  found = session.blob(url).then((blob) => ({ blob, url: URL.createObjectURL(blob) }));
  found.catch(() => loaded.delete(url));
  loaded.set(url, found);
  for (const [old, p] of loaded) {
    if (loaded.size <= MAX) break;
    loaded.delete(old);
    void p.then((i) => URL.revokeObjectURL(i.url), () => {});
  }
  return found;
}

interface Props {
  session: Session;
  src: string;
  alt: string;
  class?: string;
  width?: number;
  height?: number;
}

export function AuthImage({ session, src, alt, ...rest }: Props) {
  const [url, setUrl] = useState<string | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let live = true;
    setUrl(null);
    setFailed(false);
    loadImage(session, src).then(
      (i) => live && setUrl(i.url),
      () => live && setFailed(true),
    );
    return () => {
      live = false;
    };
  }, [session, src]);
  if (failed) return <span class={`img-missing ${rest.class ?? ''}`} role="img" aria-label={`${alt} (could not be loaded)`} />;
  if (!url) return <span class={`img-loading ${rest.class ?? ''}`} role="img" aria-label={`${alt} (loading)`} />;
  return <img src={url} alt={alt} {...rest} />;
}
