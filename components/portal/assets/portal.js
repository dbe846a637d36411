// The developer portal: renders the gateway's OpenAPI document (fetched from
// /openapi.json on this origin, the one copy of the contract) and sends
// "try it" requests to the gateway.
//
// Rules this file keeps, because the page's Content-Security-Policy and the
// issue demand them:
// - the DOM is built with createElement and textContent only: no markup from
//   strings (the policy enforces Trusted Types with no policy, so assigning
//   HTML text would throw), no inline style, no eval;
// - requests go to this origin only (connect-src 'self'), without cookies
//   and without a referrer;
// - the subscription key and the bearer token live in the `credentials`
//   object below and in their two input fields, nowhere else: never in a
//   URL, a cookie or the browser's storage. A reload forgets them.
'use strict';

(function () {
  const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
  const MAX_DEPTH = 6;
  const SUBSCRIPTION_HEADER = 'Ocp-Apim-Subscription-Key';

  // The only place the credentials are held (besides their input fields).
  const credentials = { subscriptionKey: '', bearerToken: '' };

  // --- DOM helpers --------------------------------------------------------

  /** An element with attributes and children (strings become text nodes). */
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null || value === false) continue;
      node.setAttribute(name, value === true ? '' : String(value));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children) {
      if (child === undefined || child === null || child === false) continue;
      if (Array.isArray(child)) append(node, child);
      else node.append(typeof child === 'string' ? document.createTextNode(child) : child);
    }
  }

  /** Description text: paragraphs split on blank lines, `code` spans kept as code. */
  function prose(text, className) {
    if (!text) return null;
    const box = el('div', { class: className || 'prose' });
    for (const paragraph of String(text).split(/\n\s*\n/)) {
      const p = el('p');
      String(paragraph).split('`').forEach((part, i) => {
        if (part) p.append(i % 2 === 1 ? el('code', {}, part) : document.createTextNode(part));
      });
      box.append(p);
    }
    return box;
  }

  function slug(text) {
    return String(text).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  }

  // --- the document -------------------------------------------------------

  /** Follows a local `$ref`; returns [target, name of the last component referenced]. */
  function deref(doc, node) {
    let name = null;
    let hops = 0;
    while (node && typeof node === 'object' && typeof node.$ref === 'string' && hops < 16) {
      const ref = node.$ref;
      if (!ref.startsWith('#/')) return [{}, ref];
      name = ref.split('/').pop();
      node = ref
        .slice(2)
        .split('/')
        .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
        .reduce((at, key) => (at && typeof at === 'object' ? at[key] : undefined), doc);
      hops += 1;
    }
    return [node || {}, name];
  }

  function typeText(schema) {
    if (Array.isArray(schema.type)) return schema.type.join(' | ');
    if (schema.type) return schema.type;
    if (schema.const !== undefined) return 'const';
    if (schema.oneOf) return 'one of';
    if (schema.anyOf) return 'any of';
    if (schema.allOf) return 'all of';
    return 'any';
  }

  /** The constraints of a schema as short phrases. */
  function constraints(schema) {
    const out = [];
    if (schema.format) out.push('format ' + schema.format);
    if (schema.enum) out.push('one of ' + schema.enum.map((v) => JSON.stringify(v)).join(', '));
    if (schema.const !== undefined) out.push('exactly ' + JSON.stringify(schema.const));
    if (schema.minLength !== undefined) out.push('at least ' + schema.minLength + ' characters');
    if (schema.maxLength !== undefined) out.push('at most ' + schema.maxLength + ' characters');
    if (schema.minimum !== undefined) out.push('minimum ' + schema.minimum);
    if (schema.maximum !== undefined) out.push('maximum ' + schema.maximum);
    if (schema.minItems !== undefined) out.push('at least ' + schema.minItems + ' items');
    if (schema.maxItems !== undefined) out.push('at most ' + schema.maxItems + ' items');
    if (schema.default !== undefined) out.push('default ' + JSON.stringify(schema.default));
    if (schema.pattern) out.push('pattern ' + schema.pattern);
    if (schema.additionalProperties === false) out.push('no other members');
    return out;
  }

  /** A schema as a nested list; `seen` stops recursion through references. */
  function schemaView(doc, schema, depth, seen) {
    const [resolved, name] = deref(doc, schema);
    const box = el('div', { class: 'schema' });
    const head = el('span', { class: 'schema-type' }, typeText(resolved));
    if (name) head.append(' ', el('span', { class: 'schema-name' }, name));
    box.append(head);
    const notes = constraints(resolved);
    if (notes.length) box.append(' ', el('span', { class: 'schema-constraints' }, notes.join('; ')));
    if (resolved.description) box.append(prose(resolved.description, 'schema-description'));
    if (name && seen.includes(name)) return box;
    if (depth >= MAX_DEPTH) return box;
    const inner = name ? seen.concat([name]) : seen;
    const properties = resolved.properties || {};
    const required = new Set(resolved.required || []);
    const names = Object.keys(properties);
    if (names.length) {
      const list = el('ul', { class: 'schema-properties' });
      for (const prop of names) {
        list.append(
          el(
            'li',
            {},
            el('code', { class: 'property-name' }, prop),
            required.has(prop) ? el('span', { class: 'required' }, 'required') : null,
            ' ',
            schemaView(doc, properties[prop], depth + 1, inner),
          ),
        );
      }
      box.append(list);
    }
    if (resolved.items) {
      box.append(el('div', { class: 'schema-items' }, 'items: ', schemaView(doc, resolved.items, depth + 1, inner)));
    }
    for (const key of ['oneOf', 'anyOf', 'allOf']) {
      if (Array.isArray(resolved[key])) {
        const list = el('ul', { class: 'schema-alternatives' });
        for (const option of resolved[key]) list.append(el('li', {}, schemaView(doc, option, depth + 1, inner)));
        box.append(list);
      }
    }
    return box;
  }

  function pretty(value) {
    return JSON.stringify(value, null, 2);
  }

  /** Named examples of a media type: [{name, summary, value}]. */
  function examplesOf(doc, media) {
    const out = [];
    for (const [name, example] of Object.entries(media.examples || {})) {
      const [resolved] = deref(doc, example);
      if (resolved.value !== undefined) out.push({ name, summary: resolved.summary || name, value: resolved.value });
    }
    if (!out.length && media.example !== undefined) out.push({ name: 'example', summary: 'Example', value: media.example });
    return out;
  }

  // --- rendering ----------------------------------------------------------

  function operationsOf(doc) {
    const out = [];
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const method of HTTP_METHODS) {
        if (item[method]) out.push({ path, method, op: item[method], item });
      }
    }
    return out;
  }

  function securityText(requirement) {
    const names = Object.keys(requirement);
    return names.length ? names.join(' + ') : 'none';
  }

  function renderSchemes(doc) {
    const schemes = (doc.components && doc.components.securitySchemes) || {};
    const list = el('dl', { class: 'schemes' });
    for (const [name, scheme] of Object.entries(schemes)) {
      let how = scheme.type;
      if (scheme.type === 'apiKey') how = scheme.in + ' ' + scheme.name;
      if (scheme.type === 'http') how = 'Authorization: ' + scheme.scheme + (scheme.bearerFormat ? ' (' + scheme.bearerFormat + ')' : '');
      list.append(el('dt', {}, el('code', {}, name), ' — ', how), el('dd', {}, prose(scheme.description)));
    }
    return el('section', { id: 'security-schemes' }, el('h2', {}, 'Security schemes'), list);
  }

  function parametersOf(doc, item, op) {
    const byKey = new Map();
    for (const p of (item.parameters || []).concat(op.parameters || [])) {
      const [resolved] = deref(doc, p);
      byKey.set(resolved.in + ':' + resolved.name, resolved);
    }
    return Array.from(byKey.values());
  }

  function renderParameters(doc, parameters) {
    if (!parameters.length) return null;
    const body = el('tbody');
    for (const p of parameters) {
      body.append(
        el(
          'tr',
          {},
          el('td', {}, el('code', {}, p.name)),
          el('td', {}, p.in),
          el('td', {}, p.required ? 'required' : 'optional'),
          el('td', {}, schemaView(doc, p.schema || {}, 0, []), prose(p.description)),
        ),
      );
    }
    return el(
      'div',
      { class: 'parameters' },
      el('h4', {}, 'Parameters'),
      el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'name'), el('th', {}, 'in'), el('th', {}, ''), el('th', {}, 'schema'))), body),
    );
  }

  function renderRequestBody(doc, op) {
    if (!op.requestBody) return null;
    const [body] = deref(doc, op.requestBody);
    const box = el('div', { class: 'request-body' }, el('h4', {}, 'Request body', body.required ? ' (required)' : ''));
    for (const [type, media] of Object.entries(body.content || {})) {
      box.append(el('div', { class: 'media-type' }, el('code', {}, type)), schemaView(doc, media.schema || {}, 0, []));
      for (const example of examplesOf(doc, media)) {
        box.append(
          el('div', { class: 'example' }, el('div', { class: 'example-title' }, 'Example: ', example.summary), el('pre', {}, pretty(example.value))),
        );
      }
    }
    return box;
  }

  function renderResponses(doc, op) {
    const box = el('div', { class: 'responses' }, el('h4', {}, 'Responses'));
    for (const [status, response] of Object.entries(op.responses || {})) {
      const [resolved, name] = deref(doc, response);
      const details = el(
        'details',
        { class: 'response status-' + status.charAt(0) + 'xx' },
        el('summary', {}, el('span', { class: 'status' }, status), ' ', resolved.description || '', name ? el('span', { class: 'schema-name' }, name) : null),
      );
      const headers = Object.keys(resolved.headers || {});
      if (headers.length) details.append(el('div', { class: 'response-headers' }, 'Headers: ', headers.join(', ')));
      for (const [type, media] of Object.entries(resolved.content || {})) {
        details.append(el('div', { class: 'media-type' }, el('code', {}, type)), schemaView(doc, media.schema || {}, 0, []));
      }
      box.append(details);
    }
    return box;
  }

  /** The "try it" form of one operation. */
  function renderTry(doc, entry, parameters) {
    const { method, path, op } = entry;
    const id = op.operationId || slug(method + ' ' + path);
    const fields = [];
    const form = el('div', { class: 'try-fields' });
    for (const p of parameters) {
      const input = el('input', {
        type: 'text',
        id: id + '-param-' + slug(p.in + '-' + p.name),
        'data-in': p.in,
        'data-name': p.name,
        autocomplete: 'off',
        spellcheck: 'false',
        placeholder: p.in === 'path' ? 'required' : 'optional',
      });
      fields.push({ p, input });
      form.append(el('label', { for: input.id }, p.name + ' (' + p.in + ')'), input);
    }
    let bodyArea = null;
    if (op.requestBody) {
      const [body] = deref(doc, op.requestBody);
      const media = (body.content || {})['application/json'] || {};
      const examples = examplesOf(doc, media);
      bodyArea = el('textarea', { id: id + '-body', rows: 10, spellcheck: 'false', 'aria-label': 'request body (JSON)' });
      bodyArea.value = examples.length ? pretty(examples[0].value) : '';
      form.append(el('label', { for: bodyArea.id }, 'Body (application/json)'), bodyArea);
    }
    const send = el('button', { type: 'button', class: 'send', id: id + '-send' }, 'Send ' + method.toUpperCase() + ' ' + path);
    const result = el('div', { class: 'result', id: id + '-result', 'aria-live': 'polite' });
    send.addEventListener('click', () => {
      send.disabled = true;
      tryIt(method, path, fields, bodyArea, result).finally(() => {
        send.disabled = false;
      });
    });
    return el('details', { class: 'try', id: id + '-try' }, el('summary', {}, 'Try it'), form, send, result);
  }

  function buildUrl(path, fields) {
    let url = path;
    const query = new URLSearchParams();
    for (const { p, input } of fields) {
      const value = input.value;
      if (p.in === 'path') url = url.split('{' + p.name + '}').join(encodeURIComponent(value));
      else if (p.in === 'query' && value !== '') query.append(p.name, value);
    }
    const q = query.toString();
    return q ? url + '?' + q : url;
  }

  async function tryIt(method, path, fields, bodyArea, result) {
    const headers = new Headers();
    for (const { p, input } of fields) {
      if (p.in === 'header' && input.value !== '') headers.set(p.name, input.value);
    }
    // The key goes in the header, never in the query string.
    if (credentials.subscriptionKey) headers.set(SUBSCRIPTION_HEADER, credentials.subscriptionKey);
    if (credentials.bearerToken) headers.set('Authorization', 'Bearer ' + credentials.bearerToken);
    const init = {
      method: method.toUpperCase(),
      headers,
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
      redirect: 'manual',
    };
    if (bodyArea && bodyArea.value.trim() !== '') {
      headers.set('Content-Type', 'application/json');
      init.body = bodyArea.value;
    }
    const url = buildUrl(path, fields);
    result.replaceChildren(el('p', { class: 'pending' }, 'Sending…'));
    let response;
    try {
      response = await fetch(url, init);
    } catch (error) {
      result.replaceChildren(el('p', { class: 'error' }, 'The request failed: ' + error.message));
      return;
    }
    const text = await response.text();
    const type = response.headers.get('content-type') || '';
    let shown = text;
    let json = null;
    if (/json/.test(type)) {
      try {
        json = JSON.parse(text);
        shown = pretty(json);
      } catch (_) {
        json = null;
      }
    }
    const headerList = el('dl', { class: 'result-headers' });
    response.headers.forEach((value, name) => headerList.append(el('dt', {}, name), el('dd', {}, value)));
    const statusLine = el(
      'p',
      { class: 'result-status status-' + String(response.status).charAt(0) + 'xx', 'data-status': response.status },
      method.toUpperCase() + ' ' + url + ' → ',
      el('strong', {}, String(response.status)),
      response.statusText ? ' ' + response.statusText : '',
      type ? ' (' + type + ')' : '',
    );
    const parts = [statusLine];
    if (json && response.status === 201 && typeof json.id === 'string') {
      parts.push(el('p', { class: 'created' }, 'Created id: ', el('code', { class: 'created-id' }, json.id)));
    }
    if (json && /problem\+json/.test(type)) {
      parts.push(el('p', { class: 'problem' }, (json.title || 'Problem') + ': ' + (json.detail || '')));
    }
    parts.push(el('details', { class: 'result-headers-box' }, el('summary', {}, 'Response headers'), headerList));
    parts.push(el('pre', { class: 'result-body' }, shown));
    result.replaceChildren(...parts);
  }

  function renderOperation(doc, entry) {
    const { method, path, op, item } = entry;
    const id = op.operationId || slug(method + ' ' + path);
    const parameters = parametersOf(doc, item, op);
    const security = op.security || doc.security || [];
    return el(
      'section',
      { class: 'operation', id: 'op-' + id, 'data-operation-id': id },
      el('h3', {}, el('span', { class: 'method method-' + method }, method.toUpperCase()), ' ', el('code', { class: 'path' }, path), ' ', op.summary || ''),
      prose(op.description),
      el(
        'p',
        { class: 'security' },
        op['x-required-scope'] ? ['Scope: ', el('code', {}, op['x-required-scope']), '. '] : null,
        'Credentials: ',
        security.length ? security.map(securityText).join(', or ') : 'none',
        '.',
      ),
      renderParameters(doc, parameters),
      renderRequestBody(doc, op),
      renderResponses(doc, op),
      renderTry(doc, entry, parameters),
    );
  }

  function render(doc) {
    const info = doc.info || {};
    document.title = (info.title || 'API') + ' — developer portal';
    document.getElementById('title').textContent = info.title || 'API';
    document.getElementById('version').textContent = 'OpenAPI ' + doc.openapi + ', version ' + (info.version || '?');
    const intro = document.getElementById('intro');
    intro.replaceChildren();
    append(intro, [prose(info.description)]);

    const operations = operationsOf(doc);
    const tags = (doc.tags || []).map((t) => t.name);
    for (const entry of operations) {
      for (const tag of entry.op.tags || ['other']) if (!tags.includes(tag)) tags.push(tag);
    }
    const toc = el('ul');
    const main = document.getElementById('operations');
    main.replaceChildren(renderSchemes(doc));
    for (const tag of tags) {
      const inTag = operations.filter((e) => (e.op.tags || ['other']).includes(tag));
      if (!inTag.length) continue;
      const tagInfo = (doc.tags || []).find((t) => t.name === tag) || {};
      const section = el('section', { class: 'tag', id: 'tag-' + slug(tag) }, el('h2', {}, tag), prose(tagInfo.description));
      const sub = el('ul');
      for (const entry of inTag) {
        const id = entry.op.operationId || slug(entry.method + ' ' + entry.path);
        sub.append(el('li', {}, el('a', { href: '#op-' + id }, entry.method.toUpperCase() + ' ' + entry.path)));
        section.append(renderOperation(doc, entry));
      }
      toc.append(el('li', {}, el('a', { href: '#tag-' + slug(tag) }, tag), sub));
      main.append(section);
    }
    document.getElementById('toc').replaceChildren(el('h2', {}, 'Operations'), toc);
    document.body.setAttribute('data-ready', String(operations.length));
  }

  // --- start --------------------------------------------------------------

  function bindCredentials() {
    const key = document.getElementById('subscription-key');
    const token = document.getElementById('bearer-token');
    key.addEventListener('input', () => {
      credentials.subscriptionKey = key.value.trim();
    });
    token.addEventListener('input', () => {
      credentials.bearerToken = token.value.trim();
    });
    document.getElementById('forget').addEventListener('click', () => {
      key.value = '';
      token.value = '';
      credentials.subscriptionKey = '';
      credentials.bearerToken = '';
    });
  }

  async function start() {
    bindCredentials();
    const status = document.getElementById('load-status');
    try {
      const response = await fetch('/openapi.json', { credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer' });
      if (!response.ok) throw new Error('GET /openapi.json answered ' + response.status);
      render(await response.json());
      status.textContent = '';
    } catch (error) {
      status.textContent = 'The API description could not be loaded: ' + error.message;
      document.body.setAttribute('data-ready', 'error');
    }
  }

  start();
})();
