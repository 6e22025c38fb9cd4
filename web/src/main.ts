// The demo page: signs in as one of the dev issuer's demo users, shows
// /users/me, lists a workspace's members, creates one (showing the
// temporary password once), and shows problems (403, 409, …) as messages.
// Every call goes cross-origin to the API through the typed client.
import { createClient, type Problem } from "../../clients/typescript/src/index";

/** What `make dev` (or the browser test) writes for the page: where the API is, and a token per demo user. */
interface Demo {
  api: string;
  users: { name: string; email: string; role: string; token: string }[];
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const demo: Demo = await (await fetch("/demo.json")).json();
let token: string | undefined = demo.users[0]?.token;
const api = createClient(demo.api, () => token);

const select = $<HTMLSelectElement>("user");
for (const u of demo.users) select.add(new Option(`${u.name} <${u.email}> — ${u.role}`, u.token));
select.onchange = () => {
  token = select.value;
  void showMe();
};

function problem(p: Problem | undefined) {
  $("problem").textContent = p ? `${p.status} ${p.title}: ${p.detail}` : "";
}

async function showMe() {
  const { data, error } = await api.GET("/users/me");
  problem(error);
  $("me").textContent = data ? JSON.stringify(data, null, 2) : "";
}

$("list").onclick = async () => {
  const slug = $<HTMLInputElement>("slug").value;
  const { data, error } = await api.GET("/tenants/{slug}/members", { params: { path: { slug } } });
  problem(error);
  const rows = $<HTMLTableElement>("members").tBodies[0]!;
  rows.replaceChildren();
  for (const m of data ?? []) {
    const tr = rows.insertRow();
    tr.insertCell().textContent = m.email ?? "";
    tr.insertCell().textContent = m.name ?? "";
  }
};

$("create").onclick = async () => {
  const slug = $<HTMLInputElement>("slug").value;
  const role = $<HTMLSelectElement>("role").value === "admin" ? "admin" : "member";
  const body = { name: $<HTMLInputElement>("name").value, localPart: $<HTMLInputElement>("local").value, role } as const;
  const { data, error } = await api.POST("/tenants/{slug}/members/create", { params: { path: { slug } }, body });
  problem(error);
  $("created").innerHTML = "";
  if (data) {
    $("created").append(`${data.email} created; temporary password (shown once): `);
    const pw = document.createElement("span");
    pw.className = "password";
    pw.id = "password";
    pw.textContent = data.tempPassword;
    $("created").append(pw);
  }
};

void showMe();
