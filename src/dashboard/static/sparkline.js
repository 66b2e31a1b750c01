// An inline SVG sparkline: values over time, gaps (null) left open, the latest point marked.

const SVG = 'http://www.w3.org/2000/svg';

/**
 * Draws `values` into `container` as a line (or bars with `bars: true`), scaled to the largest
 * value (at least `floor`). `label` is what a screen reader hears.
 */
export function sparkline(container, values, { label, floor = 1, bars = false, height = 40 } = {}) {
  // Drawn at the container's own width, so circles stay round and strokes stay thin.
  const width = Math.max(60, container.clientWidth || 180);
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('height', String(height));
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.setAttribute('preserveAspectRatio', 'none');
  const max = Math.max(floor, ...values.filter((v) => v !== null));
  const pad = 3;
  const step = values.length > 1 ? (width - 2 * pad) / (values.length - 1) : 0;
  const x = (i) => pad + i * step;
  const y = (v) => height - pad - (v / max) * (height - 2 * pad);
  const base = document.createElementNS(SVG, 'line');
  for (const [k, v] of Object.entries({ x1: 0, x2: width, y1: height - pad, y2: height - pad, class: 'spark-base' })) base.setAttribute(k, String(v));
  svg.append(base);
  if (bars) {
    const w = Math.max(1, step * 0.7);
    values.forEach((v, i) => {
      if (!v) return;
      const rect = document.createElementNS(SVG, 'rect');
      for (const [k, val] of Object.entries({ x: x(i) - w / 2, y: y(v), width: w, height: height - pad - y(v), class: 'spark-bar' })) rect.setAttribute(k, String(val));
      svg.append(rect);
    });
  } else {
    let points = [];
    const flush = () => {
      if (points.length > 1) {
        const area = document.createElementNS(SVG, 'polygon');
        area.setAttribute('points', `${points[0][0]},${height - pad} ${points.map((p) => p.join(',')).join(' ')} ${points.at(-1)[0]},${height - pad}`);
        area.setAttribute('class', 'spark-area');
        const line = document.createElementNS(SVG, 'polyline');
        line.setAttribute('points', points.map((p) => p.join(',')).join(' '));
        line.setAttribute('class', 'spark-line');
        svg.append(area, line);
      }
      points = [];
    };
    values.forEach((v, i) => {
      if (v === null) flush();
      else points.push([x(i).toFixed(1), y(v).toFixed(1)]);
    });
    flush();
    const lastIndex = values.findLastIndex((v) => v !== null);
    if (lastIndex >= 0) {
      const dot = document.createElementNS(SVG, 'circle');
      for (const [k, v] of Object.entries({ cx: x(lastIndex), cy: y(values[lastIndex]), r: 2.5, class: 'spark-dot' })) dot.setAttribute(k, String(v));
      svg.append(dot);
    }
  }
  container.replaceChildren(svg);
}
