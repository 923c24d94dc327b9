/**
 * The console's access token in the browser (`metaprune up` keeps it in
 * <home>/secrets.json as "token"): taken once from a "#token=..." link into this tab's
 * storage, asked for when a write is refused with 401, and sent with every write in the
 * x-metaprune-token header (a custom header: never sent cross-site without CORS).
 */
const TOKEN_STORE = 'metaprune-console-token';

if (location.hash.startsWith('#token=')) {
  sessionStorage.setItem(TOKEN_STORE, decodeURIComponent(location.hash.slice(7)));
  history.replaceState(null, '', location.pathname + location.search);
}

function withConsoleToken(init: RequestInit | undefined): RequestInit | undefined {
  const token = sessionStorage.getItem(TOKEN_STORE);
  if (!init?.method || init.method === 'GET' || !token) return init;
  return {
    ...init,
    headers: { ...(init.headers as Record<string, string>), 'x-metaprune-token': token },
  };
}

/** fetch() with the console token on writes; asks for it once when a write gets 401. */
export async function consoleFetch(path: string, init?: RequestInit): Promise<Response> {
  const res = await fetch(path, withConsoleToken(init));
  const own = !(init?.headers as Record<string, string> | undefined)?.['authorization'];
  if (res.status !== 401 || init?.method !== 'POST' || !own) return res;
  const token = window.prompt(
    'This console needs its access token ("token" in the secrets.json of metaprune up):',
  );
  if (!token) return res;
  sessionStorage.setItem(TOKEN_STORE, token.trim());
  return fetch(path, withConsoleToken(init));
}
