using System;
using System.Linq;
using System.Net;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace KeyServiceOps.Lab.Estate
{
    /// <summary>What every emulator shares: a quiet Kestrel server on 127.0.0.1 with a free port, and JSON answers.</summary>
    public static class LabHost
    {
        // Hundreds of lab servers in one process: no config-file watchers (each costs an inotify instance, limit 128).
        static LabHost() => Environment.SetEnvironmentVariable("DOTNET_hostBuilder__reloadConfigOnChange", "false");

        public static async Task<(WebApplication app, Uri baseUri)> StartAsync(RequestDelegate handler)
        {
            var b = WebApplication.CreateSlimBuilder();
            b.Logging.ClearProviders();
            b.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
            var app = b.Build();
            app.Run(handler);
            await app.StartAsync();
            return (app, new Uri(app.Urls.First() + "/"));
        }

        public static async Task Json(HttpContext ctx, int status, JsonNode body)
        {
            ctx.Response.StatusCode = status;
            ctx.Response.ContentType = "application/json; charset=utf-8";
            await ctx.Response.WriteAsync(body.ToJsonString());
        }

        public static async ValueTask StopAsync(WebApplication app)
        {
            if (app != null) { await app.StopAsync(); await app.DisposeAsync(); }
        }
    }
}
