// In-page part of bench/web.ts (read as text and evaluated in Chromium): scrolls the message list up
// `perFrame` px per animation frame until the oldest message is on screen, recording the gaps between
// frames and the long tasks (> 50 ms) the page reports meanwhile.
(oldest, perFrame) => {
  const list = document.querySelector('[role="log"]');
  const has = () => Array.from(list.querySelectorAll('.content')).some((e) => e.textContent === oldest);
  const longTasks = [];
  const obs = new PerformanceObserver((l) => {
    for (const e of l.getEntries()) longTasks.push(e.duration);
  });
  obs.observe({ type: 'longtask' });
  const gaps = [];
  let maxRows = 0;
  const start = performance.now();
  let last = start;
  return new Promise((resolve) => {
    requestAnimationFrame(function frame(t) {
      gaps.push(t - last);
      last = t;
      maxRows = Math.max(maxRows, list.querySelectorAll('article.message').length);
      list.scrollTop = Math.max(0, list.scrollTop - perFrame);
      if (!((has() && list.scrollTop === 0) || performance.now() - start > 120000)) {
        requestAnimationFrame(frame);
        return;
      }
      obs.disconnect();
      gaps.shift();
      const sorted = gaps.slice().sort((a, b) => a - b);
      resolve({
        seconds: (performance.now() - start) / 1000,
        frames: gaps.length,
        max_frame_ms: Math.max(...gaps),
        p99_frame_ms: sorted[Math.floor(sorted.length * 0.99)] ?? 0,
        frames_over_50ms: gaps.filter((x) => x > 50).length,
        long_tasks: longTasks.length,
        longest_task_ms: longTasks.length ? Math.max(...longTasks) : 0,
        max_rows_in_dom: maxRows,
        reached_oldest: has(),
      });
    });
  });
};
