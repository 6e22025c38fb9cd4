import { defineConfig } from "vite";

// The page is served on its own origin (127.0.0.1:5173), so its calls to
// the API (127.0.0.1:3000) are cross-origin: CORS is exercised for real.
export default defineConfig({
  server: { host: "127.0.0.1", port: 5173, strictPort: true, fs: { allow: [".."] } },
  build: { target: "es2022" },
});
