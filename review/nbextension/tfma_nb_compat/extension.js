// Classic-notebook (nbclassic) compatibility shim for TFMA's Jupyter widgets.
// Enable it next to tensorflow_model_analysis/extension and jupyter-js-widgets/extension.
define(['nbextensions/jupyter-js-widgets/extension'], function (widgets) {
  'use strict';
  // 1) widgetsnbextension >= 3.6.7 (ipywidgets >= 7.8.2) ships @jupyter-widgets/base as native ES
  //    classes. TFMA builds its models/views with Backbone's .extend(), which yields constructors that
  //    lack the static _deserialize_state() ("n._deserialize_state is not a function") and cannot
  //    be `new`-ed. Give those base classes an .extend() that creates real ES subclasses.
  function esExtend(protoProps, staticProps) {
    const Child = class extends this {};
    Object.assign(Child.prototype, protoProps || {});
    return Object.assign(Child, staticProps || {});
  }
  const isEsClass = C => /^class\b/.test(Function.prototype.toString.call(C));
  ['WidgetModel', 'DOMWidgetModel', 'WidgetView', 'DOMWidgetView'].forEach(function (n) {
    if (widgets[n] && isEsClass(widgets[n])) widgets[n].extend = esExtend;
  });
  if (requirejs.defined('nbextensions/tensorflow_model_analysis/index')) {
    console.warn('tfma_nb_compat: TFMA widget module was loaded before the shim');
  }

  // 2) vulcanized_tfma.js bundles a UMD d3-tip that calls an anonymous define() when RequireJS is on
  //    the page. TFMA injects the bundle with a plain <script>, so the stray define() is picked up by
  //    the next require() call ("Mismatched anonymous define() module") and randomly breaks another
  //    widget. Preload the bundle with `define` hidden (d3-tip then attaches to window.d3 as intended);
  //    the text/plain placeholder makes TFMA's loader see it as already loaded.
  function preloadVulcanized() {
    const src = (document.body.getAttribute('data-base-url') || '/') +
        'nbextensions/tensorflow_model_analysis/vulcanized_tfma.js';
    if (document.querySelector('script[src="' + src + '"]')) return Promise.resolve();
    const ph = document.createElement('script');
    ph.type = 'text/plain';
    ph.setAttribute('src', src);
    document.head.appendChild(ph);
    return fetch(src, {credentials: 'same-origin'}).then(function (r) {
      if (!r.ok) throw new Error('tfma_nb_compat: ' + src + ' -> HTTP ' + r.status);
      return r.text();
    }).then(function (code) {
      const run = function (text) {
        const s = document.createElement('script');
        s.textContent = text;
        document.head.appendChild(s);  // inline scripts run synchronously, in order
      };
      run('window.__tfmaDefine = window.define; window.define = undefined;');
      run(code + '\n//# sourceURL=' + src);
      run('window.define = window.__tfmaDefine; delete window.__tfmaDefine;');
    });
  }

  return {load_ipython_extension: preloadVulcanized};
});
