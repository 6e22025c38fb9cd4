// The typed client of the account-provisioning API. `paths` and
// `components` are generated from the API's /openapi.json
// (`cargo run -p devtool --bin client`); calls go through openapi-fetch, so
// a route's path parameters, body and answer are all checked by tsc.
import createFetchClient from "openapi-fetch";
import type { components, paths } from "./schema";

export type { components, paths };
export type Schemas = components["schemas"];
/** An RFC 9457 problem, as every route answers its errors. */
export type Problem = Schemas["Problem"];

/**
 * A client for the API at `baseUrl` (e.g. `http://127.0.0.1:3000`) that
 * sends `token()` as the bearer token of every call.
 */
export function createClient(baseUrl: string, token: () => string | undefined) {
  const client = createFetchClient<paths>({ baseUrl });
  client.use({
    onRequest({ request }) {
      const t = token();
      if (t) request.headers.set("Authorization", `Bearer ${t}`);
      return request;
    },
  });
  return client;
}
