package localkube

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
)

// svcProxy is the runner's kube-proxy for one Service with a selector and
// a cluster IP: it listens on the Service's own loopback address
// 127.X.255.N at each port (and, for NodePort and LoadBalancer Services,
// on the Node's address at each node port) and forwards each connection to
// a ready pod the selector matches, at the target port.
type svcProxy struct {
	ip        string
	signature string // the ports it listens on
	listeners []net.Listener
	wg        sync.WaitGroup
	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	closed    bool
}

func (p *svcProxy) close() {
	p.mu.Lock()
	p.closed = true
	for _, l := range p.listeners {
		l.Close()
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *svcProxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		if p.closed {
			return false
		}
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

func proxied(svc *corev1.Service) bool {
	return len(svc.Spec.Selector) > 0 && svc.Spec.Type != corev1.ServiceTypeExternalName &&
		svc.Spec.ClusterIP != corev1.ClusterIPNone
}

func portsSignature(svc *corev1.Service) string {
	var b strings.Builder
	for _, p := range svc.Spec.Ports {
		fmt.Fprintf(&b, "%s/%d/%d/%s;", p.Protocol, p.Port, p.NodePort, p.TargetPort.String())
	}
	return string(svc.Spec.Type) + ":" + b.String()
}

// syncService brings the Service's proxy and load-balancer status in line.
func (r *runner) syncService(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	svc, err := r.services.Services(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	r.mu.Lock()
	p := r.mu.proxies[key]
	if r.mu.stopping {
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	if svc == nil || !proxied(svc) {
		if p != nil {
			p.close()
			r.mu.Lock()
			delete(r.mu.proxies, key)
			delete(r.mu.svcIPs, p.ip)
			r.mu.Unlock()
		}
		return nil
	}
	if p == nil || p.signature != portsSignature(svc) {
		ip := ""
		if p != nil {
			ip = p.ip
			p.close()
		} else {
			r.mu.Lock()
			ip = r.allocServiceIPLocked()
			r.mu.Unlock()
			if ip == "" {
				return fmt.Errorf("no free service address for %s", key)
			}
		}
		p, err = r.listen(svc, ip)
		r.mu.Lock()
		if err != nil {
			delete(r.mu.proxies, key)
			delete(r.mu.svcIPs, ip)
			r.mu.Unlock()
			return err
		}
		r.mu.proxies[key] = p
		r.mu.Unlock()
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		want := []corev1.LoadBalancerIngress{{IP: p.ip}}
		if len(svc.Status.LoadBalancer.Ingress) != 1 || svc.Status.LoadBalancer.Ingress[0].IP != p.ip {
			s := svc.DeepCopy()
			s.Status.LoadBalancer.Ingress = want
			if _, err := r.client.CoreV1().Services(ns).UpdateStatus(ctx, s, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("set the load balancer ingress of service %s: %w", key, err)
			}
		}
	}
	return nil
}

// allocServiceIPLocked hands out the next free 127.X.255.N.
func (r *runner) allocServiceIPLocked() string {
	for range 253 {
		n := 1 + r.mu.nextSvc%253
		r.mu.nextSvc++
		ip := fmt.Sprintf("127.%d.255.%d", r.net, n)
		if !r.mu.svcIPs[ip] {
			r.mu.svcIPs[ip] = true
			return ip
		}
	}
	return ""
}

// listen opens the Service's listeners at ip and serves them.
func (r *runner) listen(svc *corev1.Service, ip string) (*svcProxy, error) {
	p := &svcProxy{ip: ip, signature: portsSignature(svc), conns: map[net.Conn]struct{}{}}
	for _, sp := range svc.Spec.Ports {
		if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
			continue
		}
		addrs := []string{net.JoinHostPort(ip, strconv.Itoa(int(sp.Port)))}
		if sp.NodePort != 0 {
			addrs = append(addrs, net.JoinHostPort(r.nodeIP, strconv.Itoa(int(sp.NodePort))))
		}
		for _, a := range addrs {
			l, err := net.Listen("tcp", a)
			if err != nil {
				p.close()
				return nil, fmt.Errorf("proxy service %s/%s port %d: %w", svc.Namespace, svc.Name, sp.Port, err)
			}
			p.listeners = append(p.listeners, l)
			p.wg.Go(func() { r.serveProxy(p, l, svc.Namespace, svc.Name, sp) })
		}
	}
	return p, nil
}

func (r *runner) serveProxy(p *svcProxy, l net.Listener, ns, name string, sp corev1.ServicePort) {
	var next int
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		backends := r.backends(ns, name, sp)
		if len(backends) == 0 {
			c.Close()
			continue
		}
		addr := backends[next%len(backends)]
		next++
		if !p.track(c, true) {
			c.Close()
			return
		}
		p.wg.Go(func() {
			defer p.track(c, false)
			defer c.Close()
			b, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return
			}
			if !p.track(b, true) {
				b.Close()
				return
			}
			defer p.track(b, false)
			defer b.Close()
			done := make(chan struct{})
			go func() {
				io.Copy(b, c)
				b.(*net.TCPConn).CloseWrite()
				close(done)
			}()
			io.Copy(c, b)
			c.(*net.TCPConn).CloseWrite()
			<-done
		})
	}
}

// backends are the addresses (pod IP, target port) of the ready pods the
// Service selects, in a stable order.
func (r *runner) backends(ns, name string, sp corev1.ServicePort) []string {
	svc, err := r.services.Services(ns).Get(name)
	if err != nil {
		return nil
	}
	pods := r.selected(svc, false)
	var out []string
	for _, pod := range pods {
		port := sp.TargetPort.IntValue()
		if sp.TargetPort.String() != "" && port == 0 {
			port = namedPort(pod, sp.TargetPort.String())
		}
		if sp.TargetPort.String() == "" || sp.TargetPort.String() == "0" {
			port = int(sp.Port)
		}
		if port != 0 {
			out = append(out, net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(port)))
		}
	}
	return out
}

// selected are the Service's pods with an address, the ready ones only
// unless notReady (a headless Service publishing not-ready addresses).
func (r *runner) selected(svc *corev1.Service, notReady bool) []*corev1.Pod {
	pods, err := r.pods.Pods(svc.Namespace).List(labels.SelectorFromSet(svc.Spec.Selector))
	if err != nil {
		return nil
	}
	var out []*corev1.Pod
	for _, p := range pods {
		if p.Status.PodIP == "" || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		if !notReady && !podReady(p) {
			continue
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func namedPort(pod *corev1.Pod, name string) int {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return int(p.ContainerPort)
			}
		}
	}
	return 0
}

// lookup answers a DNS name of the cluster: <service>.<namespace>, with
// .svc or .svc.cluster.local optionally after it. ok is false for a name
// outside the cluster.
func (r *runner) lookup(name string) (ips []net.IP, ok bool) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	name = strings.TrimSuffix(name, ".cluster.local")
	name = strings.TrimSuffix(name, ".svc")
	svcName, ns, found := strings.Cut(name, ".")
	if !found || strings.Contains(ns, ".") {
		return nil, false
	}
	svc, err := r.services.Services(ns).Get(svcName)
	if err != nil {
		// A name of the cluster's form in a namespace that exists is the
		// cluster's to answer (NXDOMAIN), as CoreDNS does.
		if _, err := r.spaces.Get(ns); err == nil {
			return nil, true
		}
		return nil, false
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		for _, p := range r.selected(svc, svc.Spec.PublishNotReadyAddresses) {
			ips = append(ips, net.ParseIP(p.Status.PodIP))
		}
		return ips, true
	}
	key := svc.Namespace + "/" + svc.Name
	r.mu.Lock()
	p := r.mu.proxies[key]
	r.mu.Unlock()
	if p != nil {
		ips = append(ips, net.ParseIP(p.ip))
	}
	return ips, true
}

// dnsServer is the cluster DNS on the Node's address, UDP and TCP on one
// port. Names outside the cluster are resolved by this process's
// resolver.
type dnsServer struct {
	ctx    context.Context // ends with close: bounds the forwarded lookups
	cancel context.CancelFunc
	addr   string
	r      *runner
	udp    net.PacketConn
	tcp    net.Listener
	wg     sync.WaitGroup
}

func startDNS(r *runner, ip string) (*dnsServer, error) {
	var lastErr error
	for range 20 {
		udp, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, fmt.Errorf("localkube: start the cluster DNS on %s: %w", ip, err)
		}
		addr := udp.LocalAddr().String()
		tcp, err := net.Listen("tcp", addr)
		if err != nil {
			udp.Close()
			lastErr = err
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		d := &dnsServer{ctx: ctx, cancel: cancel, addr: addr, r: r, udp: udp, tcp: tcp}
		d.wg.Go(d.serveUDP)
		d.wg.Go(d.serveTCP)
		return d, nil
	}
	return nil, fmt.Errorf("localkube: start the cluster DNS on %s: %w", ip, lastErr)
}

func (d *dnsServer) close() {
	d.cancel()
	d.udp.Close()
	d.tcp.Close()
	d.wg.Wait()
}

func (d *dnsServer) serveUDP() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.udp.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp := d.answer(buf[:n]); resp != nil {
			d.udp.WriteTo(resp, from)
		}
	}
}

func (d *dnsServer) serveTCP() {
	for {
		c, err := d.tcp.Accept()
		if err != nil {
			return
		}
		d.wg.Go(func() {
			defer c.Close()
			for {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				var l [2]byte
				if _, err := io.ReadFull(c, l[:]); err != nil {
					return
				}
				q := make([]byte, int(l[0])<<8|int(l[1]))
				if _, err := io.ReadFull(c, q); err != nil {
					return
				}
				resp := d.answer(q)
				if resp == nil {
					return
				}
				c.Write(append([]byte{byte(len(resp) >> 8), byte(len(resp))}, resp...))
			}
		})
	}
}

// answer builds the response to one query message (nil if unparsable).
func (d *dnsServer) answer(msg []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	var ips []net.IP
	name := q.Name.String()
	cluster := false
	if q.Class == dnsmessage.ClassINET {
		ips, cluster = d.r.lookup(name)
		if !cluster && (q.Type == dnsmessage.TypeA || q.Type == dnsmessage.TypeAAAA) {
			ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
			network := "ip4"
			if q.Type == dnsmessage.TypeAAAA {
				network = "ip6"
			}
			host, err := net.DefaultResolver.LookupIP(ctx, network, strings.TrimSuffix(name, "."))
			cancel()
			if err == nil {
				ips = host
			}
		}
	}
	if len(ips) == 0 && cluster {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	for _, ip := range ips {
		hdr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 5}
		if v4 := ip.To4(); v4 != nil && q.Type == dnsmessage.TypeA {
			b.AResource(hdr, dnsmessage.AResource{A: [4]byte(v4)})
		} else if v4 == nil && q.Type == dnsmessage.TypeAAAA {
			b.AAAAResource(hdr, dnsmessage.AAAAResource{AAAA: [16]byte(ip.To16())})
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}
