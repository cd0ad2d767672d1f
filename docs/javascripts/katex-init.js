// Renders the page's math with the local KaTeX (docs/vendor, installed by `make docs`).
// pymdownx.arithmatex writes \( \) and \[ \] inside .arithmatex elements; notebook cells
// keep Jupyter's $ and $$. Safe to run twice: rendered math has no delimiters left.
(function () {
  function render() {
    if (!window.renderMathInElement) return;
    document.querySelectorAll(".arithmatex").forEach(function (el) {
      renderMathInElement(el, {
        delimiters: [
          { left: "\\(", right: "\\)", display: false },
          { left: "\\[", right: "\\]", display: true },
        ],
        throwOnError: false,
      });
    });
    document.querySelectorAll(".jupyter-wrapper .jp-RenderedMarkdown").forEach(function (el) {
      renderMathInElement(el, {
        delimiters: [
          { left: "$$", right: "$$", display: true },
          { left: "$", right: "$", display: false },
        ],
        throwOnError: false,
      });
    });
  }
  if (window.document$) {
    window.document$.subscribe(render);  // Material's page-load event (instant navigation too)
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", render);
  } else {
    render();
  }
})();
