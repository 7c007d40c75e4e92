// tiny backend: node backend.mjs PORT ID
import http from "node:http";
import { Server } from "socket.io";
const [port, id] = process.argv.slice(2);
const server = http.createServer((req, res) => {
  if (req.url.startsWith("/socket.io")) return;
  let size = 0;
  req.on("data", (c) => (size += c.length));
  req.on("end", () => {
    res.setHeader("X-Node-Id", id);
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ id, url: req.url, size, xff: req.headers["x-forwarded-for"], remote: req.socket.remoteAddress }));
  });
});
const io = new Server(server);
io.engine.on("headers", (headers) => { headers["X-Node-Id"] = id; });
io.on("connection", (socket) => {
  socket.on("whoami", (ack) => ack({ id, transport: socket.conn.transport.name }));
});
server.listen(Number(port), "127.0.0.1");
