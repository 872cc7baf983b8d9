using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace KeyServiceOps.Core.Diagnosis
{
    /// <summary>What the runbook says to do about a fault.</summary>
    public enum FaultAction { AssignToOwner, Restart, Escalate }

    /// <summary>A cause found in an instance's logs or container state.</summary>
    public sealed class Fault
    {
        public string Address { get; set; }
        public string Container { get; set; }
        public string Category { get; set; }
        /// <summary>A dependency fault (cipher, IAM): restarting will not help; the incident goes to the owner.</summary>
        public bool Dependency { get; set; }
        /// <summary>The typed value for code; PowerShell sees <see cref="Action"/> (its name), so JSON and CSV read the same as the views.</summary>
        internal FaultAction ActionValue { get; set; }
        public string Action => ActionValue.ToString();
        /// <summary>Who the incident goes to for this category (from the context's FaultOwners), when known.</summary>
        public string Owner { get; set; }
        public string Advice { get; set; }
        public string Rule { get; set; }
        public long Count { get; set; }
        public DateTimeOffset? FirstSeen { get; set; }
        public DateTimeOffset? LastSeen { get; set; }
        /// <summary>The first lines that showed the fault and the latest ones (at most five).</summary>
        public TextList Evidence { get; set; } = new TextList();
        /// <summary>The last evidence line as an operator reads it first (its msg; see <see cref="LogText"/>).</summary>
        public string LastEvidence => Evidence == null || Evidence.Count == 0 ? null : LogText.Readable(Evidence[Evidence.Count - 1]);
        /// <summary>Log, ContainerState, or both.</summary>
        public string Source { get; set; }
        public override string ToString() => $"{Address} {Category} ({Count}x) {Action}";
    }

    public sealed class FaultRule
    {
        public string Name { get; set; }
        public string Category { get; set; }
        public bool Dependency { get; set; }
        public FaultAction Action { get; set; } = FaultAction.Restart;
        public LogLevel MinLevel { get; set; } = LogLevel.Unknown;
        public string Pattern { get; set; }
        public string Advice { get; set; }
        [JsonIgnore] internal Regex Regex { get; set; }
    }

    /// <summary>Ordered rules (first match wins) plus the "Unknown" catch-all for error lines no rule claims.</summary>
    public sealed class FaultRuleSet
    {
        public List<FaultRule> Rules { get; } = new List<FaultRule>();
        public FaultRule Unknown { get; private set; }
        public List<string> Sources { get; } = new List<string>();

        private static FaultRuleSet _default;

        /// <summary>The module's rules (module/KeyServiceOps.FaultRules.json, embedded in the core).</summary>
        public static FaultRuleSet Default
        {
            get
            {
                if (_default != null) return _default;
                using (var s = typeof(FaultRuleSet).Assembly.GetManifestResourceStream("KeyServiceOps.FaultRules.json"))
                using (var r = new StreamReader(s))
                    return _default = Parse(r.ReadToEnd(), "(module default rules)");
            }
        }

        /// <summary>The operator's file first, then the defaults (unless the file says "replaceDefaults": true).</summary>
        public static FaultRuleSet Load(string path)
        {
            if (string.IsNullOrEmpty(path)) return Default;
            string text;
            try { text = File.ReadAllText(path); }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                throw new OpsException("FaultRulesUnreadable", OpsErrorCategory.ReadError, $"Cannot read the fault-rules file '{path}': {e.Message}", path,
                    recommendedAction: "Check the path given with -RulePath or faultRulesPath.", inner: e);
            }
            var own = Parse(text, path);
            if (own.Replace) return own;
            var merged = new FaultRuleSet { Unknown = own.Unknown ?? Default.Unknown };
            merged.Rules.AddRange(own.Rules); merged.Rules.AddRange(Default.Rules);
            merged.Sources.AddRange(own.Sources); merged.Sources.AddRange(Default.Sources);
            return merged;
        }

        private bool Replace { get; set; }

        public static FaultRuleSet Parse(string json, string source)
        {
            var set = new FaultRuleSet();
            set.Sources.Add(source);
            try
            {
                var o = JObject.Parse(json);
                set.Replace = (bool?)o["replaceDefaults"] ?? false;
                var i = 0;
                foreach (var r in (o["rules"] as JArray) ?? new JArray())
                {
                    i++;
                    var rule = r.Type == JTokenType.Object ? r.ToObject<FaultRule>() : throw new FormatException($"rule {i} is {(r.Type == JTokenType.Null ? "null" : "not an object")}");
                    if (string.IsNullOrEmpty(rule.Category) || string.IsNullOrEmpty(rule.Pattern))
                        throw new FormatException($"rule {i} ({rule.Name}) needs a category and a pattern");
                    rule.Name = rule.Name ?? rule.Category;
                    rule.Regex = new Regex(rule.Pattern, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(200));
                    set.Rules.Add(rule);
                }
                if (o["unknown"] is JObject u)
                {
                    set.Unknown = u.ToObject<FaultRule>();
                    set.Unknown.Name = set.Unknown.Name ?? "unknown";
                    set.Unknown.Category = set.Unknown.Category ?? "Unknown";
                }
            }
            catch (Exception e) when (e is JsonException || e is FormatException || e is ArgumentException)
            {
                throw new OpsException("FaultRulesInvalid", OpsErrorCategory.InvalidData, $"The fault-rules file {source} is not valid: {e.Message}", source,
                    recommendedAction: "Start from the module's KeyServiceOps.FaultRules.json; each rule needs name, category, pattern (a .NET regex) and action.", inner: e);
            }
            return set;
        }
    }

    /// <summary>
    /// Reads log entries and container states one at a time (constant memory per fault) and reports the
    /// faults found per instance, with the runbook's advice.
    /// </summary>
    public sealed class FaultAnalyzer
    {
        private const int EvidenceHead = 3, EvidenceTail = 2;
        private readonly FaultRuleSet _rules;
        private readonly IDictionary<string, string> _owners;
        private readonly Dictionary<(string, string), Acc> _found = new Dictionary<(string, string), Acc>();
        private readonly List<(string, string)> _order = new List<(string, string)>();

        private readonly Action<string> _warn;
        private readonly HashSet<FaultRule> _skipped = new HashSet<FaultRule>();
        private readonly System.Diagnostics.Stopwatch _matching = new System.Diagnostics.Stopwatch();
        private bool _budgetSpent;

        public FaultAnalyzer(FaultRuleSet rules = null, IDictionary<string, string> owners = null, Action<string> warn = null)
        {
            _rules = rules ?? FaultRuleSet.Default;
            _owners = owners ?? new Dictionary<string, string>();
            _warn = warn;
        }

        /// <summary>
        /// The time all rule matching of one analysis may take. A rule that times out on a line (200 ms) is skipped for
        /// the rest of the analysis and named once in a warning; when the budget is spent, the remaining lines are
        /// not matched (a warning says how many were), so a catastrophic rule never stalls the runbook.
        /// </summary>
        public TimeSpan Budget { get; set; } = TimeSpan.FromSeconds(2);
        public IReadOnlyCollection<string> SkippedRules => _skipped.Select(r => r.Name).ToList();
        public long LinesNotMatched { get; private set; }

        private bool Matches(FaultRule rule, string text)
        {
            if (_skipped.Contains(rule)) return false;
            _matching.Start();
            try { return rule.Regex.IsMatch(text); }
            catch (RegexMatchTimeoutException)
            {
                _skipped.Add(rule);
                _warn?.Invoke($"Fault rule '{rule.Name}' ({rule.Category}) took longer than {rule.Regex.MatchTimeout.TotalMilliseconds:0} ms on one line and is skipped for the rest of this analysis: its pattern backtracks catastrophically. Fix the pattern in the rules file.");
                return false;
            }
            finally { _matching.Stop(); }
        }

        private bool WithinBudget()
        {
            if (_matching.Elapsed < Budget) return true;
            if (!_budgetSpent) { _budgetSpent = true; _warn?.Invoke($"Fault analysis stopped matching after {Budget.TotalSeconds:0.#} s of rule matching ({LinesRead} lines): the rest of the log is not diagnosed. Check the fault rules for slow patterns."); }
            LinesNotMatched++;
            return false;
        }

        public long LinesRead { get; private set; }

        public void Add(LogEntry e)
        {
            if (e == null || string.IsNullOrEmpty(e.Message)) return;
            LinesRead++;
            if (!WithinBudget()) return;
            foreach (var rule in _rules.Rules)
            {
                if (e.LevelValue != LogLevel.Unknown && e.LevelValue < rule.MinLevel) continue;
                if (!Matches(rule, e.Message)) continue;
                Record(e.Address, e.Container, rule, e.Timestamp, Line(e), "Log");
                return;
            }
            var u = _rules.Unknown;
            if (u != null && e.LevelValue != LogLevel.Unknown && e.LevelValue >= (u.MinLevel == LogLevel.Unknown ? LogLevel.Error : u.MinLevel))
                Record(e.Address, e.Container, u, e.Timestamp, Line(e), "Log");
        }

        public void Add(ContainerState s)
        {
            if (s == null) return;
            if (s.OOMKilled)
            {
                var rule = _rules.Rules.FirstOrDefault(r => r.Category == "OutOfMemory")
                           ?? new FaultRule { Name = "out-of-memory", Category = "OutOfMemory", Action = FaultAction.Restart, Advice = "The container ran out of memory. Restart it." };
                Record(s.Address, s.Container, rule, s.FinishedAt, $"docker inspect: OOMKilled=true, ExitCode={s.ExitCode}, Status={s.Status}", "ContainerState");
            }
            else if (!string.IsNullOrEmpty(s.Error))
            {
                var hit = _rules.Rules.FirstOrDefault(r => Matches(r, s.Error)) ?? _rules.Unknown;
                if (hit != null) Record(s.Address, s.Container, hit, s.FinishedAt, $"docker inspect: Error={s.Error}, ExitCode={s.ExitCode}", "ContainerState");
            }
        }

        private static string Line(LogEntry e)
            => (e.Timestamp != null ? e.Timestamp.Value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z' ") : "") + (e.StreamValue == LogStream.Stderr ? "[stderr] " : "") + e.Message;

        private void Record(string address, string container, FaultRule rule, DateTimeOffset? at, string evidence, string source)
        {
            var key = (address ?? "", rule.Category);
            if (!_found.TryGetValue(key, out var acc))
            {
                _found[key] = acc = new Acc
                {
                    Fault = new Fault
                    {
                        Address = address, Container = container, Category = rule.Category, Dependency = rule.Dependency, ActionValue = rule.Action,
                        Advice = rule.Advice, Rule = rule.Name, Source = source,
                        Owner = _owners.TryGetValue(rule.Category, out var o) ? o : null,
                    },
                };
                _order.Add(key);
            }
            var f = acc.Fault;
            f.Count++;
            if (!f.Source.Contains(source)) f.Source += "," + source;
            if (at != null)
            {
                if (f.FirstSeen == null || at < f.FirstSeen) f.FirstSeen = at;
                if (f.LastSeen == null || at > f.LastSeen) f.LastSeen = at;
            }
            acc.Sequence = ++_seq;
            if (acc.Head.Count < EvidenceHead) acc.Head.Add(evidence);
            else { acc.Tail.Enqueue(evidence); if (acc.Tail.Count > EvidenceTail) acc.Tail.Dequeue(); }
        }

        private long _seq;

        /// <summary>The faults found, the most recent last (so the "last fault found" is the final one).</summary>
        public IReadOnlyList<Fault> Results()
        {
            return _order.Select(k => _found[k])
                .OrderBy(a => a.Fault.LastSeen ?? DateTimeOffset.MinValue).ThenBy(a => a.Sequence)
                .Select(a => { a.Fault.Evidence = new TextList(a.Head.Concat(a.Tail)); return a.Fault; })
                .ToList();
        }

        /// <summary>The runbook's gate before a restart: the most recent fault, if it is a dependency fault.</summary>
        public static Fault BlockingFault(IEnumerable<Fault> faults)
        {
            var last = faults?.Where(f => f != null).OrderBy(f => f.LastSeen ?? DateTimeOffset.MinValue).LastOrDefault();
            return last != null && last.Dependency ? last : null;
        }

        private sealed class Acc
        {
            public Fault Fault;
            public long Sequence;
            public readonly List<string> Head = new List<string>();
            public readonly Queue<string> Tail = new Queue<string>();
        }
    }
}
