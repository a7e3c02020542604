FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p gbcluster

FROM debian:bookworm-slim
COPY --from=build /src/target/release/gbcluster /usr/local/bin/gbcluster
EXPOSE 5060/udp 5060/tcp 8080
ENTRYPOINT []
CMD ["gbcluster", "all"]
