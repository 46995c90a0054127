// BeitV2.Web: the ASP.NET Core host. In this first issue it is a bare host that proves the model
// library loads in the web process; the REST API, jobs and UI come with the next issues.
using BeitV2.Web;

var builder = WebApplication.CreateBuilder(args);
var app = builder.Build();

app.MapHostInfo();

app.Run();

public partial class Program;
