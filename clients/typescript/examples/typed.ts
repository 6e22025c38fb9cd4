// A typed use of the client, compiled by `tsc --noEmit` in `make test`: if
// a route, a body or an answer changes shape, this stops compiling.
import { createClient, type Problem, type Schemas } from "../src/index";

const api = createClient("http://127.0.0.1:3000", () => "a-token");

export async function createMember(slug: string): Promise<string | Problem> {
  const body: Schemas["CreateMember"] = { name: "Jane Doe", localPart: "jane", role: "member" };
  const { data, error } = await api.POST("/tenants/{slug}/members/create", { params: { path: { slug } }, body });
  if (error) return error;
  const created: Schemas["MemberCreated"] = data;
  return created.tempPassword;
}

export async function listMembers(slug: string): Promise<number> {
  const { data } = await api.GET("/tenants/{slug}/members", { params: { path: { slug } } });
  return Array.isArray(data) ? data.length : 0;
}

export async function invite(email: string): Promise<boolean | undefined> {
  const { data } = await api.POST("/platform/operators/invite", { body: { name: "New Operator", email } });
  return data?.attached ?? false;
}
