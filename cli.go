package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"sort"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers"
	"github.com/sidekey/sidekey/server"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// it comes from the module's build info.
var version = ""

const usage = `sidekey — a reverse-proxy token injector

Usage:
  sidekey serve   --config FILE   run the proxy (FILE may also come from SIDEKEY_CONFIG)
  sidekey check   --config FILE   validate FILE: exit 0, or one line per problem
  sidekey demo    [--listen ADDR] simulated platforms behind the proxy, with curl lines
  sidekey connect TENANT --config FILE     print the consent URL and wait until TENANT is connected
  sidekey disconnect TENANT --config FILE  revoke (where possible) and forget TENANT's token
  sidekey tenants list|show T|delete T --config FILE  tenants and connections, via the admin API
  sidekey healthcheck [--url URL] exit 0 when sidekey answers 200 (for exec probes)
  sidekey ca      --config FILE   print the local CA certificate (PEM) for apps to trust
  sidekey store backup|restore|rekey --config FILE ...  back up, restore or re-key the store (sidekey store help)
  sidekey version                 print the version
`

// errUsage marks a command-line mistake (exit code 2).
var errUsage = errors.New("usage")

// problemsError carries a config's problems to main, which prints each on
// its own line (exit code 1).
type problemsError struct{ problems config.Problems }

// Error lists the problems, one per line.
func (e *problemsError) Error() string {
	return "invalid configuration:\n" + e.problems.Error()
}

// exitCode maps run's error to the process exit code.
func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// run is the whole program: main only calls it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: no command", errUsage)
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "serve":
		return serveCmd(ctx, args, stderr)
	case "check":
		return checkCmd(args, stdout, stderr)
	case "demo":
		return demoCmd(ctx, args, stdout, stderr)
	case "connect":
		return connectCmd(ctx, args, stdout, stderr)
	case "disconnect":
		return disconnectCmd(ctx, args, stdout, stderr)
	case "tenants":
		return tenantsCmd(ctx, args, stdout, stderr)
	case "healthcheck":
		return healthcheckCmd(ctx, args, stdout, stderr)
	case "ca":
		return caCmd(ctx, args, stdout, stderr)
	case "store":
		return storeCmd(ctx, args, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "sidekey", versionString())
		return nil
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

// configFlag registers --config on fs, defaulting to $SIDEKEY_CONFIG.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", os.Getenv("SIDEKEY_CONFIG"), "configuration `file` (default $SIDEKEY_CONFIG)")
}

// loadConfig reads, validates and resolves a configuration file: the one
// check that `sidekey check`, `serve`, a reload and every other command
// run, so that check passes exactly the files serve starts with. Every
// problem is reported at once, one per key, each naming its key: the
// file's (unknown keys, unreadable files), config.Validate's, each
// provider's (providers.Check, the one owner of what a provider requires),
// the files serve reads before it listens and the store key's form.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: --config FILE (or SIDEKEY_CONFIG) is required", errUsage)
	}
	cfg, problems, err := config.LoadAll(path)
	if err != nil {
		return nil, err
	}
	badApps := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(cfg.Apps)) {
		ps := providers.CheckApp(name, cfg.Apps[name])
		badApps[name] = len(ps) > 0
		problems = problems.Merge(ps)
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Tenants)) {
		// A tenant of an unknown app, or of an app without a known
		// provider, has its one problem reported already.
		if t := cfg.Tenants[name]; t == nil || t.App == "" || cfg.Apps[t.App] != nil && !badApps[t.App] {
			problems = problems.Merge(providers.Check(name, t))
		}
	}
	problems = problems.Merge(storeKeyProblems(cfg))
	if len(problems) > 0 {
		sortProblems(problems)
		return nil, &problemsError{problems: problems}
	}
	return cfg, nil
}

// asProblems turns a config.Load error into a problemsError when it carries
// keyed problems.
func asProblems(err error) error {
	var ps config.Problems
	if errors.As(err, &ps) {
		return &problemsError{problems: ps}
	}
	return err
}

// configArgs parses a command whose only flag is --config and loads the
// file it names.
func configArgs(cmd string, args []string, stderr io.Writer) (string, *config.Config, error) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return "", nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg, err := loadConfig(*path)
	return *path, cfg, err
}

func checkCmd(args []string, stdout, stderr io.Writer) error {
	path, cfg, err := configArgs("check", args, stderr)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "warning: "+w.String())
	}
	fmt.Fprintf(stdout, "%s: ok (%d tenants, %d apps)\n", path, len(cfg.Tenants), len(cfg.Apps))
	return nil
}

func serveCmd(ctx context.Context, args []string, stderr io.Writer) error {
	path, cfg, err := configArgs("serve", args, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	// go-redis logs through a process-wide logger of its own; send its
	// lines (connection failures) through ours, once, for this process.
	redis.SetLogger(redisLog{log.Named("redis")})
	srv, err := server.New(server.Options{Config: cfg, Logger: log, Version: versionString()})
	if err != nil {
		return asProblems(err)
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go watchConfig(wctx, watchOptions{Path: path, Config: cfg, Server: srv, Logger: log})
	return srv.Run(ctx)
}

// newLogger builds the process logger from the log settings.
func newLogger(c config.Log, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if c.Format == "console" {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)
	return zap.New(core), nil
}

// versionString is the version `sidekey version` and /_sidekey/status
// show: the one stamped with -ldflags "-X main.version=…" (make build, the
// Dockerfile), else the module version (go install …@v1.2.3), else "devel"
// with the VCS revision Go recorded (go build in a git checkout).
func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			rev = "+" + s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "-dirty"
		}
	}
	return "devel" + rev + dirty
}

// sortProblems orders problems by key, then message.
func sortProblems(ps config.Problems) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Key != ps[j].Key {
			return ps[i].Key < ps[j].Key
		}
		return ps[i].Message < ps[j].Message
	})
}

// redisLog adapts zap to go-redis's logger.
type redisLog struct{ log *zap.Logger }

// Printf implements go-redis's internal.Logging.
func (l redisLog) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn(fmt.Sprintf(format, v...))
}
