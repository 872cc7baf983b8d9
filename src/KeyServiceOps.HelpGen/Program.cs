using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Reflection;
using System.Runtime.Loader;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace KeyServiceOps.HelpGen
{
    /// <summary>
    /// Writes en-US/KeyServiceOps.dll-Help.xml (MAML) for every cmdlet of the staged module. Prose comes from
    /// docs/cmdlets/NAME.md (and docs/cmdlets/_parameters.md for parameters shared by many cmdlets); the
    /// parameter list, types, pipeline input, positions, aliases and defaults come from the cmdlet classes, so
    /// the help cannot drift from the code. A parameter without prose is an error: the build fails.
    /// usage: HelpGen STAGED_MODULE_DIR DOCS_DIR
    /// </summary>
    public static class Program
    {
        private static readonly XNamespace Maml = "http://schemas.microsoft.com/maml/2004/10";
        private static readonly XNamespace Command = "http://schemas.microsoft.com/maml/dev/command/2004/10";
        private static readonly XNamespace Dev = "http://schemas.microsoft.com/maml/dev/2004/10";
        private static readonly XNamespace Msh = "http://msh";

        public static int Main(string[] args)
        {
            if (args.Length < 2) { Console.Error.WriteLine("usage: HelpGen STAGED_MODULE_DIR DOCS_DIR"); return 2; }
            var module = Path.GetFullPath(args[0]);
            var docs = Path.GetFullPath(args[1]);
            var deps = Path.Combine(module, "Dependencies");
            AssemblyLoadContext.Default.Resolving += (ctx, name) =>
            {
                var p = Path.Combine(deps, name.Name + ".dll");
                return File.Exists(p) ? ctx.LoadFromAssemblyPath(p) : null;
            };
            var asm = Assembly.LoadFrom(Path.Combine(module, "KeyServiceOps.dll"));
            var shared = ParseSections(File.ReadAllText(Path.Combine(docs, "_parameters.md")), "## ");
            var problems = new List<string>();
            var root = new XElement(Msh + "helpItems", new XAttribute("schema", "maml"));
            var cmdlets = asm.GetTypes().Where(t => t.GetCustomAttribute<CmdletAttribute>() != null).OrderBy(t => Name(t)).ToList();
            // A parameter declared once on a base class (Set-/New-KeyServiceOpsContext's settings) is documented once: on the
            // page of a cmdlet of that base that describes it.
            Siblings = cmdlets.Where(t => File.Exists(Path.Combine(docs, Name(t) + ".md")))
                .Select(t => (t, ParseSections(ParseSections(File.ReadAllText(Path.Combine(docs, Name(t) + ".md")), "## ").TryGetValue("Parameters", out var ps) ? ps : "", "### "))).ToList();
            foreach (var t in cmdlets)
            {
                var name = Name(t);
                var mdPath = Path.Combine(docs, name + ".md");
                if (!File.Exists(mdPath)) { problems.Add($"{name}: no {mdPath}"); continue; }
                root.Add(CommandHelp(t, name, File.ReadAllText(mdPath), shared, problems));
            }
            if (problems.Count > 0)
            {
                foreach (var p in problems) Console.Error.WriteLine("help: " + p);
                return 1;
            }
            var outDir = Path.Combine(module, "en-US");
            Directory.CreateDirectory(outDir);
            var doc = new XDocument(new XDeclaration("1.0", "utf-8", null), root);
            using (var w = new StreamWriter(Path.Combine(outDir, "KeyServiceOps.dll-Help.xml"), false, new UTF8Encoding(false))) doc.Save(w);
            Console.WriteLine($"help: {cmdlets.Count} cmdlets -> {Path.Combine(outDir, "KeyServiceOps.dll-Help.xml")}");
            return 0;
        }

        private static string Name(Type t) { var a = t.GetCustomAttribute<CmdletAttribute>(); return a.VerbName + "-" + a.NounName; }

        /// <summary>Splits markdown into sections by a heading prefix ("## " or "### ").</summary>
        private static Dictionary<string, string> ParseSections(string md, string prefix)
        {
            var d = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            string current = null; var sb = new StringBuilder();
            foreach (var line in md.Replace("\r\n", "\n").Split('\n'))
            {
                if (line.StartsWith(prefix) && !line.StartsWith(prefix + "#"))
                {
                    if (current != null) d[current] = sb.ToString().Trim();
                    current = line.Substring(prefix.Length).Trim(); sb.Clear();
                }
                else if (current != null) sb.AppendLine(line);
            }
            if (current != null) d[current] = sb.ToString().Trim();
            return d;
        }

        private static IEnumerable<XElement> Paras(string text)
            => Regex.Split((text ?? "").Trim(), @"\n\s*\n").Where(p => p.Trim().Length > 0)
                .Select(p => new XElement(Maml + "para", Regex.Replace(p.Trim(), @"\s*\n\s*", " ")));

        private sealed class Param
        {
            public PropertyInfo Prop; public string Name; public Type Type; public List<ParameterAttribute> Attrs; public string[] Aliases; public string Default;
            public bool Mandatory => Attrs.Any(a => a.Mandatory);
            public string Position => Attrs.Select(a => a.Position).Where(p => p >= 0).Select(p => p.ToString()).FirstOrDefault() ?? "named";
            public string Pipeline
            {
                get
                {
                    var v = Attrs.Any(a => a.ValueFromPipeline); var p = Attrs.Any(a => a.ValueFromPipelineByPropertyName);
                    return v && p ? "True (ByValue, ByPropertyName)" : v ? "True (ByValue)" : p ? "True (ByPropertyName)" : "False";
                }
            }
            public string[] Sets => Attrs.Select(a => a.ParameterSetName).ToArray();
        }

        private static List<Param> Params(Type t)
        {
            // Declared-first order: the cmdlet's own parameters, then the shared ones from its base classes.
            return Properties(t, null).OrderBy(x => Depth(t, x.Prop.DeclaringType)).ThenBy(x => x.Prop.MetadataToken).ToList();
        }

        private static IEnumerable<Param> Properties(Type t, string setOverride)
        {
            object instance = null;
            try { instance = Activator.CreateInstance(t); } catch (Exception) { }
            var list = new List<Param>();
            foreach (var p in t.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                var attrs = p.GetCustomAttributes<ParameterAttribute>().ToList();
                if (attrs.Count == 0) continue;
                if (setOverride != null) foreach (var a in attrs) a.ParameterSetName = setOverride;
                string def = null;
                if (instance != null)
                {
                    var v = p.GetValue(instance);
                    if (v != null && !(v is SwitchParameter) && !(v is string s && s.Length == 0) && !(v is Array) && !IsZero(v)) def = Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture);
                }
                list.Add(new Param { Prop = p, Name = p.Name, Type = p.PropertyType, Attrs = attrs, Aliases = p.GetCustomAttribute<AliasAttribute>()?.AliasNames.ToArray() ?? new string[0], Default = def });
            }
            return list;
        }

        private static bool IsZero(object v) => v is int i && i == 0 || v is double d && d == 0 || v is int ii && ii == -1;

        private static int Depth(Type t, Type declaring) { int n = 0; for (var x = t; x != null && x != declaring; x = x.BaseType) n++; return n; }

        private static string TypeName(Type t)
        {
            if (t == typeof(SwitchParameter)) return "SwitchParameter";
            if (t.IsArray) return TypeName(t.GetElementType()) + "[]";
            var u = Nullable.GetUnderlyingType(t);
            if (u != null) return TypeName(u);
            return t.Name switch { "String" => "String", "Int32" => "Int32", "Double" => "Double", "Object" => "Object", _ => t.Name };
        }

        private static List<(Type type, Dictionary<string, string> parameters)> Siblings = new List<(Type, Dictionary<string, string>)>();

        private static XElement CommandHelp(Type t, string name, string md, Dictionary<string, string> shared, List<string> problems)
        {
            var top = ParseSections(md, "## ");
            string Sec(string key) { top.TryGetValue(key, out var v); if (string.IsNullOrWhiteSpace(v)) problems.Add($"{name}: no '## {key}' section"); return v ?? ""; }
            var synopsis = Sec("Synopsis"); var description = Sec("Description");
            var own = top.TryGetValue("Parameters", out var ps) ? ParseSections(ps, "### ") : new Dictionary<string, string>();
            var examples = top.TryGetValue("Examples", out var ex) ? ParseSections(ex, "### ") : new Dictionary<string, string>();
            if (examples.Count < 2) problems.Add($"{name}: {examples.Count} examples; at least two are needed");
            var parms = Params(t);
            var verb = name.Split('-')[0]; var noun = name.Substring(verb.Length + 1);

            string ParamText(Param p)
            {
                var key = "-" + p.Name;
                if (own.TryGetValue(key, out var text) || shared.TryGetValue(key, out text)) return text;
                var declaredBy = p.Prop.DeclaringType;
                if (declaredBy != t && declaredBy.IsAbstract)
                    foreach (var (other, parameters) in Siblings)
                        if (other != t && declaredBy.IsAssignableFrom(other) && parameters.TryGetValue(key, out text)) return text;
                problems.Add($"{name}: parameter -{p.Name} is not documented (docs/cmdlets/{name}.md or _parameters.md)");
                return "";
            }

            XElement ParamEl(Param p, bool inSyntax) => new XElement(Command + "parameter",
                new XAttribute("required", p.Mandatory ? "true" : "false"), new XAttribute("variableLength", p.Type.IsArray ? "true" : "false"),
                new XAttribute("globbing", "false"), new XAttribute("pipelineInput", p.Pipeline), new XAttribute("position", p.Position),
                new XAttribute("aliases", p.Aliases.Length == 0 ? "none" : string.Join(", ", p.Aliases)),
                new XElement(Maml + "name", p.Name),
                inSyntax ? null : new XElement(Maml + "description", Paras(ParamText(p))),
                p.Type == typeof(SwitchParameter) ? null : new XElement(Command + "parameterValue", new XAttribute("required", "true"), new XAttribute("variableLength", p.Type.IsArray ? "true" : "false"), TypeName(p.Type)),
                new XElement(Dev + "type", new XElement(Maml + "name", p.Type.FullName)),
                new XElement(Dev + "defaultValue", p.Default ?? "None"));

            var setNames = parms.SelectMany(p => p.Sets).Where(s => s != ParameterAttribute.AllParameterSets).Distinct().ToList();
            if (setNames.Count == 0) setNames.Add(ParameterAttribute.AllParameterSets);
            var syntax = new XElement(Command + "syntax", setNames.Select(set => new XElement(Command + "syntaxItem",
                new XElement(Maml + "name", name),
                parms.Where(p => p.Sets.Contains(set) || p.Sets.Contains(ParameterAttribute.AllParameterSets)).Select(p => ParamEl(p, true)))));

            var exampleEls = examples.Select((kv, i) =>
            {
                var m = Regex.Match(kv.Value, "```(?:powershell|ps1)?\\s*\\n(?<code>.*?)```(?<rest>.*)", RegexOptions.Singleline);
                if (!m.Success) problems.Add($"{name}: example '{kv.Key}' has no ```powershell block");
                return new XElement(Command + "example",
                    new XElement(Maml + "title", $"-------------------------- Example {i + 1}: {kv.Key} --------------------------"),
                    new XElement(Dev + "code", m.Success ? m.Groups["code"].Value.TrimEnd() : ""),
                    new XElement(Dev + "remarks", Paras(m.Success ? m.Groups["rest"].Value : "")));
            });

            var inputs = top.TryGetValue("Inputs", out var inp) ? inp : "";
            var outputs = top.TryGetValue("Outputs", out var outp) ? outp : "";
            var links = top.TryGetValue("Related links", out var rl) ? Regex.Matches(rl, @"^\s*-\s*(.+)$", RegexOptions.Multiline).Select(x => x.Groups[1].Value.Trim()).ToList() : new List<string>();
            if (links.Count == 0) problems.Add($"{name}: no related links");

            return new XElement(Command + "command",
                new XAttribute(XNamespace.Xmlns + "maml", Maml), new XAttribute(XNamespace.Xmlns + "command", Command), new XAttribute(XNamespace.Xmlns + "dev", Dev),
                new XElement(Command + "details",
                    new XElement(Command + "name", name),
                    new XElement(Maml + "description", Paras(synopsis)),
                    new XElement(Command + "verb", verb), new XElement(Command + "noun", noun)),
                new XElement(Maml + "description", Paras(description)),
                syntax,
                new XElement(Command + "parameters", parms.Select(p => ParamEl(p, false))),
                new XElement(Command + "inputTypes", new XElement(Command + "inputType", new XElement(Dev + "type", new XElement(Maml + "name", "Input")), new XElement(Maml + "description", Paras(inputs)))),
                new XElement(Command + "returnValues", new XElement(Command + "returnValue", new XElement(Dev + "type", new XElement(Maml + "name", "Output")), new XElement(Maml + "description", Paras(outputs)))),
                new XElement(Command + "examples", exampleEls),
                new XElement(Command + "relatedLinks", links.Select(l => new XElement(Maml + "navigationLink", new XElement(Maml + "linkText", l), new XElement(Maml + "uri", "")))));
        }
    }
}
