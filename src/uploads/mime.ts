/**
 * The upload allow list: the type comes from the file's magic bytes (file-type), never from the
 * client, and the filename's extension must be one that type is known by. Plain text has no magic
 * bytes: a `.txt` file is accepted only when nothing was detected and the bytes are valid UTF-8
 * without NULs.
 */

/** Detected extension (file-type's) → extensions a filename may carry for it. */
const ALLOWED: Record<string, string[]> = {
  png: ['png'],
  jpg: ['jpg', 'jpeg'],
  gif: ['gif'],
  webp: ['webp'],
  avif: ['avif'],
  mp3: ['mp3'],
  ogg: ['ogg', 'oga'],
  opus: ['opus', 'ogg'],
  wav: ['wav'],
  flac: ['flac'],
  m4a: ['m4a'],
  mp4: ['mp4', 'm4v'],
  webm: ['webm'],
  mov: ['mov'],
  pdf: ['pdf'],
};

export const TEXT_MIME = 'text/plain';

/** Checks bytes as they stream past: valid UTF-8 and no NUL, without keeping them. */
export class TextSniffer {
  #decoder = new TextDecoder('utf-8', { fatal: true });
  #ok = true;

  update(chunk: Buffer): void {
    if (!this.#ok) return;
    if (chunk.includes(0)) {
      this.#ok = false;
      return;
    }
    try {
      this.#decoder.decode(chunk, { stream: true });
    } catch {
      this.#ok = false;
    }
  }

  get isText(): boolean {
    if (!this.#ok) return false;
    try {
      this.#decoder.decode();
      return true;
    } catch {
      return false;
    }
  }
}

/** The MIME type to store, or undefined when the file is not allowed under this extension. */
export async function classify(file: string, extension: string, sniffer: TextSniffer): Promise<string | undefined> {
  // Loaded on the first upload, not at start-up (idle memory).
  const { fileTypeFromFile } = await import('file-type');
  const detected = await fileTypeFromFile(file);
  if (!detected) return extension === 'txt' && sniffer.isText ? TEXT_MIME : undefined;
  const exts = ALLOWED[detected.ext];
  if (!exts?.includes(extension)) return undefined;
  return detected.mime;
}
