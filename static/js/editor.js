// The pipeline editor: Monaco with the SDK's types, markers from the server's plan and type check,
// the stage graph preview, "run this version" and saving. Loaded as a classic script after Monaco's AMD loader.
(function () {
  const host = document.getElementById("editor");
  const state = document.getElementById("validation-state");
  const message = document.getElementById("editor-message");
  const preview = () => document.getElementById("editor-preview");
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const VALIDATE_DELAY_MS = 600;

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      // With this Accept header the server rejects a request (such as a viewer's, with 403) in JSON as well.
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify(body),
    }).then(async (response) => ({ ok: response.ok, status: response.status, body: await response.json().catch(() => ({})) }))
      .catch(() => ({ ok: false, status: 0, body: { detail: "Deno CI could not be reached; your text is still here, try again." } }));
  }

  function say(text, kind) {
    message.textContent = text;
    message.className = `editor-message ${kind || ""}`;
  }

  // A conflict keeps the edited text, so the reload is the person's choice, with a button beside the message.
  function sayWithReload(text) {
    say(text, "bad");
    const reload = document.createElement("button");
    reload.type = "button";
    reload.id = "reload-editor";
    reload.className = "button-quiet";
    reload.textContent = "Reload the editor";
    reload.addEventListener("click", () => location.reload());
    message.append(" ", reload);
  }

  function configureTypeScript(libs) {
    const ts = monaco.typescript ?? monaco.languages.typescript;
    const sdk = host.dataset.sdkRoot;
    ts.typescriptDefaults.setCompilerOptions({
      target: ts.ScriptTarget.ESNext,
      module: ts.ModuleKind.ESNext,
      moduleResolution: 100, // "bundler": resolves "./x.ts" imports as the SDK writes them
      allowImportingTsExtensions: true,
      noEmit: true,
      strict: true,
      lib: ["esnext"],
      baseUrl: "file:///",
      paths: { "deno-ci": [`${sdk}/mod.ts`], "deno-ci/templates": [`${sdk}/templates/mod.ts`] },
    });
    // The server's check is the one that counts, so the browser's own diagnostics are off:
    // two sets of markers for the same file would disagree whenever Deno and Monaco's TypeScript differ.
    ts.typescriptDefaults.setDiagnosticsOptions({ noSemanticValidation: true, noSyntaxValidation: true });
    ts.typescriptDefaults.setEagerModelSync(true);
    for (const lib of libs) ts.typescriptDefaults.addExtraLib(lib.content, lib.path);
  }

  function markerFor(model, problem) {
    const line = Math.min(Math.max(problem.line || 1, 1), model.getLineCount());
    const column = problem.line ? Math.max(problem.column || 1, 1) : 1;
    const word = problem.line ? model.getWordAtPosition({ lineNumber: line, column }) : null;
    return {
      severity: monaco.MarkerSeverity.Error,
      message: problem.message,
      startLineNumber: line,
      startColumn: word ? word.startColumn : column,
      endLineNumber: line,
      endColumn: word ? word.endColumn : (problem.line ? column + 1 : model.getLineMaxColumn(line)),
      source: "deno-ci",
    };
  }

  function start(initialText, libs) {
    configureTypeScript(libs);
    const model = monaco.editor.createModel(initialText, "typescript", monaco.Uri.parse(`file:///workspace/${host.dataset.pipelinePath}`));
    const editor = monaco.editor.create(host, {
      model, automaticLayout: true, minimap: { enabled: false }, fontSize: 13, scrollBeyondLastLine: false,
      tabSize: 2, renderLineHighlight: "line", fixedOverflowWidgets: true,
    });
    window.pipelineEditor = editor;

    let latest = 0;
    let timer = null;
    async function validate() {
      if (!host.dataset.validateUrl) {
        // Checking runs the pipeline's code in a sandbox, which only people who may edit it may do.
        state.textContent = "read only";
        preview().outerHTML = '<div id="editor-preview"><h2>Stage graph</h2><p class="empty">Shown to people who may edit the pipeline.</p></div>';
        return;
      }
      const request = ++latest;
      state.textContent = "checking…";
      state.className = "validation-state";
      const { ok, body } = await post(host.dataset.validateUrl, { text: model.getValue(), branch: host.dataset.branch });
      if (request !== latest) return; // a newer edit is being checked
      if (!ok) {
        state.textContent = "not checked";
        state.className = "validation-state bad";
        say(body.detail || "The pipeline could not be checked.", "bad");
        return;
      }
      monaco.editor.setModelMarkers(model, "deno-ci", body.problems.map((problem) => markerFor(model, problem)));
      preview().outerHTML = body.preview;
      const count = body.problems.length;
      state.textContent = count ? `${count} problem${count === 1 ? "" : "s"}` : `valid · ${body.stages.length} stages`;
      state.className = `validation-state ${count ? "bad" : "good"}`;
    }
    model.onDidChangeContent(() => {
      clearTimeout(timer);
      state.textContent = "editing…";
      state.className = "validation-state";
      timer = setTimeout(validate, VALIDATE_DELAY_MS);
    });
    document.querySelector(".editor-side").addEventListener("click", (event) => {
      const link = event.target.closest("[data-line]");
      if (!link) return;
      event.preventDefault();
      const position = { lineNumber: Number(link.dataset.line), column: Number(link.dataset.column) };
      editor.setPosition(position);
      editor.revealPositionInCenter(position);
      editor.focus();
    });
    validate();

    const runButton = document.getElementById("run-edited");
    if (runButton) {
      runButton.addEventListener("click", async () => {
        runButton.disabled = true;
        const { ok, body } = await post(host.dataset.runUrl, { text: model.getValue(), branch: host.dataset.branch });
        runButton.disabled = false;
        if (ok) location.href = body.url;
        else say(body.detail || "The run could not be started.", "bad");
      });
      const saveButton = document.getElementById("save-pipeline");
      saveButton.addEventListener("click", async () => {
        saveButton.disabled = true;
        const commitMessage = document.getElementById("commit-message").value;
        const request = { text: model.getValue(), branch: host.dataset.branch, message: commitMessage };
        // The commit the text was loaded from, so that the forge rejects the save if someone pushed meanwhile.
        if (host.dataset.baseCommit) request.base = host.dataset.baseCommit;
        const { ok, status, body } = await post(host.dataset.saveUrl, request);
        saveButton.disabled = false;
        if (ok) {
          host.dataset.baseCommit = body.commit;
          say(`Committed ${body.commit.slice(0, 10)} on ${body.branch}.`, "good");
        } else if (status === 409) {
          sayWithReload(body.detail || "Someone changed the pipeline file meanwhile: reload the editor.");
        } else {
          say(body.detail || `The pipeline could not be saved (HTTP ${status}).`, "bad");
        }
      });
    }
  }

  const initialText = JSON.parse(document.getElementById("pipeline-text").textContent);
  const libsLoaded = fetch(host.dataset.typesUrl).then((response) => response.json()).then((body) => body.libs);
  require.config({ paths: { vs: host.dataset.monacoBase } });
  require(["vs/editor/editor.main"], () => libsLoaded.then((libs) => start(initialText, libs)));
})();
