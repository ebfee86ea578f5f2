// orval configuration of scripts/client-test.sh: a fetch client of ./openapi.json (the document
// the running server serves, fetched by the script) into ./generated/, calling the server through
// ./fetcher.ts. The script runs it in a temporary copy of this folder.
module.exports = {
  workspace: {
    input: { target: './openapi.json' },
    output: {
      target: './generated/workspace.ts',
      client: 'fetch',
      mode: 'single',
      clean: true,
      override: { mutator: { path: './fetcher.ts', name: 'customFetch' } },
    },
  },
};
