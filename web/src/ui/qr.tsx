/** A QR code drawn on a canvas, locally (uqr is loaded only when a QR code is shown). */
import { useEffect, useRef, useState } from 'preact/hooks';

export function QrCode({ text, label }: { text: string; label: string }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let live = true;
    import('uqr')
      .then(({ encode }) => {
        const el = canvas.current;
        if (!live || !el) return;
        const { data, size } = encode(text, { ecc: 'M', border: 2 });
        const scale = 6;
        el.width = el.height = size * scale;
        const g = el.getContext('2d')!;
        g.fillStyle = '#fff';
        g.fillRect(0, 0, el.width, el.height);
        g.fillStyle = '#000';
        for (let y = 0; y < size; y++)
          for (let x = 0; x < size; x++) if (data[y]?.[x]) g.fillRect(x * scale, y * scale, scale, scale);
      })
      .catch(() => live && setFailed(true));
    return () => {
      live = false;
    };
  }, [text]);
  if (failed) return <p class="error">The QR code could not be drawn; use the key below.</p>;
  return <canvas ref={canvas} class="qr" role="img" aria-label={label} />;
}
