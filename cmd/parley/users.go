package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/parley-ai/parley"
	"github.com/parley-ai/parley/configs"
	"github.com/parley-ai/parley/store"
	"github.com/parley-ai/parley/web/auth"
)

// cli is what the account and history commands take from the process, so
// that tests can run them in-process with their own input and settings.
type cli struct {
	stdin  io.Reader
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
}

func osCLI(stdout, stderr io.Writer) cli {
	return cli{stdin: os.Stdin, getenv: os.Getenv, stdout: stdout, stderr: stderr}
}

func runUsers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return osCLI(stdout, stderr).users(ctx, args)
}

const usersUsage = `usage:
  parley users add NAME --role agent|supervisor|admin [--skills cards,payments] [--password-stdin] [--config FILE]
  parley users list [--json] [--config FILE]
  parley users remove NAME [--config FILE]`

func (c cli) users(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(c.stderr, usersUsage)
		return errors.New("users: no subcommand given")
	}
	switch args[0] {
	case "add":
		return c.usersAdd(ctx, args[1:])
	case "list":
		return c.usersList(ctx, args[1:])
	case "remove", "rm":
		return c.usersRemove(ctx, args[1:])
	}
	fmt.Fprintln(c.stderr, usersUsage)
	return fmt.Errorf("users: unknown subcommand %q", args[0])
}

func (c cli) usersAdd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("users add", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	cfgPath := fs.String("config", "", "YAML configuration file")
	role := fs.String("role", "", "agent, supervisor or admin")
	skills := fs.String("skills", "", "comma-separated skills the agent handles (cards,payments)")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("users add: give exactly one NAME")
	}
	name := pos[0]
	if err := store.CheckUserName(name); err != nil {
		return fmt.Errorf("users add: %w", err)
	}
	r := parley.Role(*role)
	if !r.Valid() {
		return fmt.Errorf("users add: --role must be agent, supervisor or admin, got %q", *role)
	}
	u := parley.User{Name: name, Role: r, Skills: splitSkills(*skills), CreatedAt: time.Now().UTC()}
	pw, err := c.readNewPassword(*fromStdin, name)
	if err != nil {
		return fmt.Errorf("users add: %w", err)
	}
	if u.ID, err = auth.NewUserID(); err != nil {
		return fmt.Errorf("users add: %w", err)
	}
	if u.PasswordHash, err = auth.HashPassword(pw); err != nil {
		return fmt.Errorf("users add: %w", err)
	}
	return c.withUsers(ctx, *cfgPath, func(us parley.UserStore) error {
		if err := us.CreateUser(ctx, u); err != nil {
			if errors.Is(err, store.ErrDuplicate) {
				return fmt.Errorf("users add: a user called %q already exists", name)
			}
			return fmt.Errorf("users add: %w", err)
		}
		fmt.Fprintf(c.stdout, "added %s %s (%s)\n", u.Role, u.Name, u.ID)
		return nil
	})
}

func (c cli) usersList(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("users list", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	cfgPath := fs.String("config", "", "YAML configuration file")
	asJSON := fs.Bool("json", false, "one JSON object per line instead of a table")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("users list: unexpected argument %q", pos[0])
	}
	return c.withUsers(ctx, *cfgPath, func(us parley.UserStore) error {
		users, err := us.ListUsers(ctx)
		if err != nil {
			return fmt.Errorf("users list: %w", err)
		}
		if *asJSON {
			enc := json.NewEncoder(c.stdout)
			for _, u := range users {
				if err := enc.Encode(u); err != nil {
					return fmt.Errorf("users list: %w", err)
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tSKILLS\tCREATED")
		for _, u := range users {
			skills := strings.Join(u.Skills, ",")
			if skills == "" {
				skills = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Name, u.Role, skills, u.CreatedAt.Format(time.DateTime))
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("users list: %w", err)
		}
		return nil
	})
}

func (c cli) usersRemove(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("users remove", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	cfgPath := fs.String("config", "", "YAML configuration file")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("users remove: give exactly one NAME")
	}
	return c.withUsers(ctx, *cfgPath, func(us parley.UserStore) error {
		if err := us.DeleteUser(ctx, pos[0]); err != nil {
			if errors.Is(err, parley.ErrNotFound) {
				return fmt.Errorf("users remove: no user called %q", pos[0])
			}
			return fmt.Errorf("users remove: %w", err)
		}
		fmt.Fprintf(c.stdout, "removed %s and ended their sessions\n", pos[0])
		return nil
	})
}

// withStore opens the store serve would use (PARLEY_STORE, or SQLite in
// the data directory), runs fn and closes it.
func (c cli) withStore(ctx context.Context, cfgPath string, fn func(parley.Store) error) error {
	cfg, err := configs.Load(cfgPath, c.getenv)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	err = fn(st)
	if cerr := st.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("store: close: %w", cerr)
	}
	return err
}

// withUsers is withStore for the accounts kept next to the calls.
func (c cli) withUsers(ctx context.Context, cfgPath string, fn func(parley.UserStore) error) error {
	return c.withStore(ctx, cfgPath, func(st parley.Store) error {
		us, ok := st.(parley.UserStore)
		if !ok {
			return fmt.Errorf("store %T keeps no users", st)
		}
		return fn(us)
	})
}

// readNewPassword gets a new password: the first line of stdin with
// --password-stdin or when stdin is not a terminal, else typed twice
// without echo.
func (c cli) readNewPassword(fromStdin bool, name string) (string, error) {
	f, isFile := c.stdin.(*os.File)
	if !fromStdin && isFile && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(c.stderr, "Password for %s: ", name)
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(c.stderr, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords do not match")
		}
		return string(a), auth.CheckPassword(string(a))
	}
	line, err := readLine(c.stdin)
	if err != nil {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	return line, auth.CheckPassword(line)
}

// readLine reads one line from r and returns it without its line ending;
// a last line without a newline counts, an empty input is an error.
func readLine(r io.Reader) (string, error) {
	line, err := bufio.NewReaderSize(r, 16).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if errors.Is(err, io.EOF) {
			return "", errors.New("no input")
		}
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func splitSkills(s string) []string {
	var out []string
	for _, sk := range strings.Split(s, ",") {
		if sk = strings.TrimSpace(sk); sk != "" {
			out = append(out, sk)
		}
	}
	return out
}

// parseInterspersed parses flags that may come before or after the
// positional arguments ("users add NAME --role agent") and returns the
// positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// confirm asks question on stderr and reports whether the answer is "yes".
func (c cli) confirm(question string) (bool, error) {
	fmt.Fprintf(c.stderr, "%s Type yes to go on: ", question)
	line, err := readLine(c.stdin)
	if err != nil {
		return false, fmt.Errorf("read confirmation: %w", err)
	}
	return strings.EqualFold(strings.TrimSpace(line), "yes"), nil
}
