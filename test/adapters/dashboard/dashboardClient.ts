/** A browser stand-in for the dashboard over fetch: a cookie jar, forms as urlencoded POSTs. */
export type DashboardResponse = {
  status: number;
  location: string | null;
  text: string;
  headers: Headers;
};

export type DashboardClient = {
  get: (path: string) => Promise<DashboardResponse>;
  post: (path: string, form: Record<string, string | string[]>) => Promise<DashboardResponse>;
  /** Signs in through the form; returns the response to the POST. */
  signIn: (key: string) => Promise<DashboardResponse>;
  /** The CSRF token of the last page that had a form. */
  csrf: () => string;
  cookies: Map<string, string>;
  setCookies: string[];
};

const tokenIn = (text: string): string | null =>
  /name="_csrf" value="([^"]+)"/.exec(text)?.[1] ?? null;

export const dashboardClient = (baseUrl: string): DashboardClient => {
  const cookies = new Map<string, string>();
  const setCookies: string[] = [];
  let lastToken = '';

  const remember = (response: Response) => {
    for (const line of response.headers.getSetCookie()) {
      setCookies.push(line);
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (/Max-Age=0/i.test(line)) cookies.delete(name);
      else cookies.set(name, value);
    }
  };

  const request = async (
    method: string,
    path: string,
    body?: URLSearchParams,
  ): Promise<DashboardResponse> => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      redirect: 'manual',
      headers: {
        cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; '),
        ...(body && { 'content-type': 'application/x-www-form-urlencoded' }),
      },
      ...(body && { body }),
    });
    remember(response);
    const text = await response.text();
    const token = tokenIn(text);
    if (token) lastToken = token;
    return {
      status: response.status,
      location: response.headers.get('location'),
      text,
      headers: response.headers,
    };
  };

  const post = (path: string, form: Record<string, string | string[]>) => {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(form))
      for (const item of Array.isArray(v) ? v : [v]) body.append(k, item);
    return request('POST', path, body);
  };

  return {
    get: (path) => request('GET', path),
    post,
    signIn: async (key) => {
      await request('GET', '/dashboard/sign-in');
      return post('/dashboard/sign-in', { _csrf: lastToken, api_key: key });
    },
    csrf: () => lastToken,
    cookies,
    setCookies,
  };
};
