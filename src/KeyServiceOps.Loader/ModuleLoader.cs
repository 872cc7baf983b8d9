using System;
using System.IO;
using System.Management.Automation;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace KeyServiceOps.Loader
{
    /// <summary>
    /// Dependency isolation. The module folder holds only this assembly; the core and every third-party
    /// dependency (SSH.NET, Newtonsoft.Json, Polly, BouncyCastle…) sit in Dependencies/, where PowerShell's
    /// probing does not look. On PowerShell 7 they load into a private AssemblyLoadContext, so another module's
    /// versions (Posh-SSH, PowerCLI) in the default context neither break us nor get broken by us. On Windows
    /// PowerShell 5.1 they resolve from Dependencies/ through AppDomain.AssemblyResolve.
    /// </summary>
    public sealed class ModuleLoader : IModuleAssemblyInitializer
    {
        internal static readonly string DependencyDir =
            Path.Combine(Path.GetDirectoryName(typeof(ModuleLoader).Assembly.Location) ?? ".", "Dependencies");
        private static bool _registered;
        private static readonly object Gate = new object();

        public void OnImport() => Register();

        internal static void Register()
        {
            lock (Gate)
            {
                if (_registered) return;
                _registered = true;
                if (RuntimeInformation.FrameworkDescription.StartsWith(".NET Framework", StringComparison.Ordinal))
                    AppDomain.CurrentDomain.AssemblyResolve += ResolveOnFramework;
                else
                    RegisterOnCoreClr();
            }
        }

        // Kept out of line so that on .NET Framework nothing touching AssemblyLoadContext is ever compiled.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        private static void RegisterOnCoreClr() => CoreClrLoader.Register(DependencyDir);

        private static Assembly ResolveOnFramework(object sender, ResolveEventArgs args)
        {
            var name = new AssemblyName(args.Name).Name;
            var path = Path.Combine(DependencyDir, name + ".dll");
            return File.Exists(path) ? Assembly.LoadFrom(path) : null;
        }
    }

    /// <summary>Only touched on .NET (Core): the JIT never compiles it on .NET Framework.</summary>
    internal static class CoreClrLoader
    {
        private static DependencyLoadContext _alc;

        public static void Register(string dir)
        {
            _alc = new DependencyLoadContext(dir);
            // Only our own (non-platform) dependencies are handed over; a platform back-port the default context
            // lacks is loaded by the private context's own Resolving (asking it here would loop back).
            AssemblyLoadContext.Default.Resolving += (ctx, name) => !DependencyLoadContext.IsPlatform(name) && _alc.Owns(name) ? _alc.LoadFromAssemblyName(name) : null;
        }

        public static string Describe(Assembly a) => AssemblyLoadContext.GetLoadContext(a) is DependencyLoadContext ? "KeyServiceOps" : "Default";
    }

    /// <summary>
    /// The module's private load context. Third-party dependencies in Dependencies/ load here. Platform
    /// assemblies (System.*, Microsoft.Bcl.*: netstandard2.0 back-ports such as System.Memory) come from the
    /// runtime first, so Span&lt;T&gt; and friends stay the runtime's types; our copy is used only when the
    /// runtime has none (e.g. Microsoft.Bcl.TimeProvider).
    /// </summary>
    internal sealed class DependencyLoadContext : AssemblyLoadContext
    {
        private readonly string _dir;
        public DependencyLoadContext(string dir)
        {
            _dir = dir;
            Resolving += (alc, name) => Owns(name) ? LoadFromAssemblyPath(PathOf(name)) : null;
        }

        private string PathOf(AssemblyName name) => Path.Combine(_dir, name.Name + ".dll");

        public bool Owns(AssemblyName name) => File.Exists(PathOf(name));

        internal static bool IsPlatform(AssemblyName name)
            => name.Name.StartsWith("System.", StringComparison.Ordinal) || name.Name.StartsWith("Microsoft.Bcl.", StringComparison.Ordinal)
               || name.Name == "netstandard" || name.Name == "mscorlib";

        protected override Assembly Load(AssemblyName name)
            => !IsPlatform(name) && Owns(name) ? LoadFromAssemblyPath(PathOf(name)) : null;
    }
}
