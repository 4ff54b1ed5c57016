// golumber: a Lumberjack v2 test peer built on the reference implementation, github.com/elastic/go-lumber.
//
//	golumber server -bind 127.0.0.1:0 [-keepalive 1s] [-ack-delay 0s] [-tls-cert F -tls-key F]
//	    prints "LISTEN <addr>", then for each batch "BATCH <n> <events as a JSON array>" once acked.
//	golumber client -addr host:port -events N -window W [-compress L] [-timeout 5s] [-tls-ca F -server-name N]
//	    sends N events {"seq": i, "message": ...} in windows of W, prints "ACKED <n>" per window and
//	    "DONE <total acked>"; exits 1 on any error or if an ack does not match its window.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	client "github.com/elastic/go-lumber/client/v2"
	server "github.com/elastic/go-lumber/server/v2"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "golumber: "+format+"\n", args...)
	os.Exit(1)
}

func runServer(args []string) {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	bind := fs.String("bind", "127.0.0.1:0", "address to listen on")
	keepalive := fs.Duration("keepalive", time.Second, "keepalive ack interval while a batch is pending")
	ackDelay := fs.Duration("ack-delay", 0, "hold each batch this long before acking it")
	certFile := fs.String("tls-cert", "", "server certificate (PEM) to enable TLS")
	keyFile := fs.String("tls-key", "", "server key (PEM)")
	_ = fs.Parse(args)

	l, err := net.Listen("tcp", *bind)
	if err != nil {
		fail("listen: %v", err)
	}
	opts := []server.Option{server.Keepalive(*keepalive), server.Timeout(30 * time.Second)}
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			fail("tls: %v", err)
		}
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}})
	}
	s, err := server.NewWithListener(l, opts...)
	if err != nil {
		fail("server: %v", err)
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "LISTEN %s\n", l.Addr())
	_ = out.Flush()
	for batch := range s.ReceiveChan() {
		if *ackDelay > 0 {
			time.Sleep(*ackDelay)
		}
		body, err := json.Marshal(batch.Events)
		if err != nil {
			fail("marshal: %v", err)
		}
		// Print before acking: a line on stdout means the batch was received and is being acked.
		fmt.Fprintf(out, "BATCH %d %s\n", len(batch.Events), body)
		_ = out.Flush()
		batch.ACK()
	}
}

func runClient(args []string) {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	addr := fs.String("addr", "", "server host:port")
	events := fs.Int("events", 1000, "events to send")
	window := fs.Int("window", 100, "events per window")
	compress := fs.Int("compress", 0, "zlib level, 0 = off")
	timeout := fs.Duration("timeout", 5*time.Second, "network timeout (an ack or keepalive must arrive within it)")
	caFile := fs.String("tls-ca", "", "CA (PEM) to enable TLS and verify the server")
	serverName := fs.String("server-name", "", "expected server name")
	_ = fs.Parse(args)

	dial := func(network, address string) (net.Conn, error) {
		return net.DialTimeout(network, address, *timeout)
	}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fail("ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			fail("ca: no certificate in %s", *caFile)
		}
		cfg := &tls.Config{RootCAs: pool, ServerName: *serverName}
		dial = func(network, address string) (net.Conn, error) {
			return tls.DialWithDialer(&net.Dialer{Timeout: *timeout}, network, address, cfg)
		}
	}
	c, err := client.SyncDialWith(dial, *addr, client.Timeout(*timeout), client.CompressionLevel(*compress))
	if err != nil {
		fail("dial: %v", err)
	}
	defer c.Close()
	total := 0
	for sent := 0; sent < *events; {
		n := *window
		if rest := *events - sent; rest < n {
			n = rest
		}
		batch := make([]interface{}, n)
		for i := range batch {
			seq := sent + i
			batch[i] = map[string]interface{}{"seq": seq, "message": fmt.Sprintf("go-lumber event %d", seq)}
		}
		acked, err := c.Send(batch)
		if err != nil {
			fail("send: %v (acked %d of %d in this window)", err, acked, n)
		}
		if acked != n {
			fail("ack %d does not match window of %d", acked, n)
		}
		total += acked
		sent += n
		fmt.Printf("ACKED %d\n", acked)
	}
	fmt.Printf("DONE %d\n", total)
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: golumber server|client [flags]")
	}
	switch os.Args[1] {
	case "server":
		runServer(os.Args[2:])
	case "client":
		runClient(os.Args[2:])
	default:
		fail("unknown mode %q", os.Args[1])
	}
}
