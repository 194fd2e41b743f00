// Two MCP servers, one program: run from the repository root with
//   codemode run examples/mcp_trip.ts --mcp-config examples/servers.json
const cities = ["Paris", "Oslo", "Lima"]
const [forecasts, travel] = await Promise.all([
  Promise.all(cities.map(city => external_weather_get_forecast({ city }))),
  external_notes_search_notes({ tag: "travel" }),
])
const warmest = forecasts.reduce((best, f) => (f.high_c > best.high_c ? f : best))
return {
  warmest: `${warmest.city} (${warmest.high_c} °C, ${warmest.conditions})`,
  averageHigh: forecasts.reduce((sum, f) => sum + f.high_c, 0) / forecasts.length,
  toDo: travel.map(note => note.title),
}
