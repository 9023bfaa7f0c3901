// Gameserver is a small chess-clock server run as two instances sharing one
// Redis, with a page that shows the clocks ticking in the browser:
//
//	go run ./examples/gameserver
//
// then open http://127.0.0.1:8081/ (instance A) and, in another tab,
// http://127.0.0.1:8082/ (instance B). Both instances run on the embedded
// default, one in-process Redis, unless SYNCKAIROS_REDIS_URL names a real
// one (then run each instance as its own process, with -addr).
//
// Each instance mounts skhttp's stream, time endpoint and clock.js, and
// has its commands (new game, move, pause, resume) in a few lines each;
// the page moves through either instance and streams from the other, and
// clock.js moves to the next stream if one goes away. The expirer calls the
// flags. The same server with the clocks over a WebSocket is
// examples/gameserver/websocket, a module of its own.
package main

import "github.com/synckairos/synckairos/examples/gameserver/internal/game"

func main() { game.Main(game.Options{}) }
