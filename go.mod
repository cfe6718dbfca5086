module github.com/spate-dev/spate

go 1.26
