module github.com/synckairos/synckairos/internal/codecbench

go 1.26.0

require (
	github.com/google/go-cmp v0.7.0
	github.com/synckairos/synckairos v0.0.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/go-json-experiment/json v1.27.2
	github.com/redis/rueidis v1.0.79 // indirect
	go.opentelemetry.io/otel v1.47.0 // indirect
	go.opentelemetry.io/otel/metric v1.47.0 // indirect
	go.opentelemetry.io/otel/trace v1.47.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
)

replace github.com/synckairos/synckairos => ../..
