using System;
using System.Linq;
using System.Threading.Tasks;

namespace KeyServiceOps.Lab
{
    using KeyServiceOps.Lab.Estate; // inside: the simple name Lab is the estate class here, not the namespace

    public static class Program
    {
        /// <summary>
        /// Starts a lab with SSH, PagerDuty and central logs and keeps it up for SECONDS (default 600), until SIGINT/SIGTERM,
        /// or (with --stop-on-stdin-close) until stdin closes. With --info FILE it writes how to reach it as JSON (the Pester suites read it), and serves a control
        /// endpoint: POST {control}scenario?address=A&amp;name=CipherDependency|IamDependency|OutOfMemory|PortInUse|CleanCrash[&amp;persists=true] (the fault comes back after a restart),
        /// POST {control}mode?address=A&amp;mode=Up|Down|Hung|Error500, POST {control}alert?address=A (pages PagerDuty; answers the incident id),
        /// GET {control}restarts?address=A (how many `docker restart` commands the instance served: Docker's own RestartCount
        /// counts only restart-policy restarts, so a test cannot count manual restarts with it).
        /// </summary>
        private static async Task<int> ServeAsync(string[] args)
        {
            var seconds = args.Length > 0 && int.TryParse(args[0], out var sec) ? sec : 600;
            var info = args.SkipWhile(a => a != "--info").Skip(1).FirstOrDefault();
            await using var lab = await Lab.StartAsync(new LabOptions { Ssh = true, PagerDuty = true, CentralLogs = true, Instances = 4 });
            var known = lab.WriteKnownHosts(System.IO.Path.Combine(lab.Ssh.Dir, "known_hosts"));
            var (control, controlUri) = await LabHost.StartAsync(async ctx =>
            {
                var inst = lab.Instances.FirstOrDefault(i => i.Address == ctx.Request.Query["address"].ToString());
                if (inst == null) { ctx.Response.StatusCode = 404; return; }
                if (ctx.Request.Path == "/scenario") await inst.ApplyScenarioAsync(Enum.Parse<FaultScenario>(ctx.Request.Query["name"].ToString()), persists: ctx.Request.Query["persists"] == "true" ? true : (bool?)null);
                else if (ctx.Request.Path == "/mode") await inst.SetModeAsync(Enum.Parse<InstanceMode>(ctx.Request.Query["mode"].ToString()));
                else if (ctx.Request.Path == "/restarts") { await Microsoft.AspNetCore.Http.HttpResponseWritingExtensions.WriteAsync(ctx.Response, inst.Restarts.ToString(System.Globalization.CultureInfo.InvariantCulture)); return; }
                // The container writes a line (base64, so any bytes pass: escape sequences, invalid UTF-8): POST /log?address=&b64=&stderr=
                else if (ctx.Request.Path == "/log") inst.AppendLog(System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(ctx.Request.Query["b64"].ToString())), stderr: ctx.Request.Query["stderr"] == "true");
                // `docker logs` also sends this file's bytes as they are (a giant line, invalid UTF-8): POST /rawlog?address=&path= (empty: off)
                else if (ctx.Request.Path == "/rawlog") { var path = ctx.Request.Query["path"].ToString(); inst.RawLogFile = path.Length == 0 ? null : path; }
                else if (ctx.Request.Path == "/alert") { await Microsoft.AspNetCore.Http.HttpResponseWritingExtensions.WriteAsync(ctx.Response, lab.PagerDuty.AddAlert(inst.Address).Id); return; }
                else { ctx.Response.StatusCode = 404; return; }
                await Microsoft.AspNetCore.Http.HttpResponseWritingExtensions.WriteAsync(ctx.Response, "ok");
            });
            var json = new System.Text.Json.Nodes.JsonObject
            {
                ["kongAdminUri"] = lab.KongUri.ToString(), ["upstream"] = lab.Upstream,
                ["pagerDutyUri"] = lab.PagerDuty.BaseUri.ToString(), ["pagerDutyToken"] = lab.PagerDuty.Token,
                ["centralLogUri"] = lab.CentralLogs.BaseUri.ToString(), ["centralLogApiKey"] = lab.CentralLogs.ApiKey,
                ["sshUser"] = lab.Ssh.User, ["sshPort"] = lab.Ssh.Port, ["sshKeyPath"] = lab.Ssh.KeyPath, ["knownHostsPath"] = known,
                ["control"] = controlUri.ToString(),
                ["instances"] = new System.Text.Json.Nodes.JsonArray(lab.Instances.Select(i => (System.Text.Json.Nodes.JsonNode)i.Address).ToArray()),
            };
            if (info != null) System.IO.File.WriteAllText(info, json.ToJsonString());
            // For a person: the context line to paste and the commands that break an instance (#27 row 12); the JSON with
            // the tokens goes to --info FILE only.
            Console.WriteLine(ServeGuide.Text(lab, known, controlUri, seconds, lab.Ssh.Dir));
            // Stops after SECONDS, on SIGINT/SIGTERM, and (only with --stop-on-stdin-close, for a parent that holds the pipe)
            // when stdin closes: started in the background, stdin is already closed and must not stop the lab.
            var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using var onInt = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });
            using var onTerm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
            if (args.Contains("--stop-on-stdin-close"))
                _ = Task.Run(() => { try { while (Console.In.Read() >= 0) { } } catch (Exception) { } stop.TrySetResult(); });
            await Task.WhenAny(Task.Delay(TimeSpan.FromSeconds(seconds)), stop.Task);
            await LabHost.StopAsync(control);
            return 0;
        }

        public static async Task<int> Main(string[] args)
        {
            var cmd = args.Length > 0 ? args[0] : "demo";
            switch (cmd)
            {
                case "demo": return await Demo.RunAsync(args.Skip(1).ToArray());
                case "serve": return await ServeAsync(args.Skip(1).ToArray());
                case "isolation-check": return await IsolationCheck.RunAsync();
                default:
                    Console.Error.WriteLine("usage: dotnet run --project tests/KeyServiceOps.Lab -- demo [--docker]|serve [SECONDS] [--info FILE] [--stop-on-stdin-close]|isolation-check");
                    return 2;
            }
        }
    }
}
